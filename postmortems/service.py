"""Open, file, edit, move and read incidents. Services add and flush; the caller commits."""

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from alerts.slack.updates import incident_changed
from postmortems import lifecycle
from postmortems.diagnosis.evidence import merge_numbers
from postmortems.diagnosis.guard_status import CAUGHT, guard_read
from postmortems.documents import refresh_document
from postmortems.models import (
    ACTIVE,
    ActionItem,
    Incident,
    IncidentTag,
    Severity,
    SimilarLink,
    Status,
    TimelineEntry,
    WriteupRevision,
)
from postmortems.schemas import (
    ActionItemCreate,
    ActionItemRead,
    ActionItemUpdate,
    GuardCatchRead,
    IncidentCreate,
    IncidentRead,
    IncidentUpdate,
    SimilarRead,
    TagRead,
    TimelineRead,
)
from postmortems.taxonomy import TaxonomyIndex, load_index
from watchtower.clock import to_utc, utcnow
from watchtower.errors import Conflict, Invalid, NotFound, field_error

ACTIVE_VALUES = [s.value for s in ACTIVE]


def find_open(session: Session, key: str) -> Incident | None:
    """The active incident of a grouping key (`model:1`, or `model:1:monitor:2`), if any."""
    found = session.exec(select(Incident).where(Incident.open_key == key)).first()
    if found is None and key.count(":") == 1:  # opened under per-monitor grouping, before the model's policy changed
        found = session.exec(select(Incident).where(col(Incident.open_key).startswith(f"{key}:monitor:"))
                             .order_by(col(Incident.id))).first()
    return found


def open_or_append(
    session: Session, *, key: str, model_id: int, monitor_id: int, model_name: str, pipeline: str, title: str,
    summary: str, severity: str, severity_rule: str, evidence: dict[str, Any],
    impact_started_at: datetime, at: datetime,
) -> tuple[Incident, bool]:
    """Open an incident for the grouping key, or add the breach to its active one. Returns (incident, created).

    An appended breach merges into the incident: the latest result of each monitor's detectors replaces the
    earlier one in the evidence (which stays on the timeline), the title and summary follow, and the severity
    only goes up; the caller re-evaluates the tags (postmortems.diagnosis.reevaluate). The unique open_key makes
    a concurrent second opener append instead.
    """
    existing = find_open(session, key)
    if existing is None:
        incident = Incident(title=title, summary=summary, severity=severity, severity_rule=severity_rule,
                            model_id=model_id, monitor_id=monitor_id, open_key=key, group_key=key,
                            affected_models=[model_name], affected_pipelines=[pipeline], evidence=evidence,
                            impact_started_at=impact_started_at, opened_at=at, updated_at=at)
        try:
            with session.begin_nested():
                session.add(incident)
                session.flush()
        except IntegrityError:
            existing = find_open(session, key)
            assert existing is not None, "open_key conflict without an active incident"
        else:
            assert incident.id is not None
            add_entry(session, incident.id, "breach", summary, details=evidence, at=at)
            refresh_document(session, incident)
            return incident, True
    assert existing.id is not None
    add_entry(session, existing.id, "breach", f"Breached again: {summary}", details=evidence, at=at)
    before = existing.severity
    if severity < existing.severity:  # "SEV2" < "SEV3": a worse breach raises the incident's severity
        add_entry(session, existing.id, "severity", f"Severity raised from {existing.severity} to {severity}",
                  details={"rule": severity_rule}, at=at)
        existing.severity, existing.severity_rule = severity, severity_rule
    raised = f" Severity raised from {before} to {existing.severity}." if existing.severity != before else ""
    incident_changed(session, existing.id, f"Breached again: {summary}{raised}", repeat=not raised)
    existing.evidence = merge_evidence(existing.evidence, evidence)
    existing.title, existing.summary = title, summary
    existing.updated_at = at
    session.add(existing)
    session.flush()
    refresh_document(session, existing)
    return existing, False


def merge_evidence(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The newest result of each (monitor, detector) wins; results only the old evidence has are kept."""
    def key(check: dict[str, Any], monitor: str) -> tuple[str, str]:
        return check.get("monitor", monitor), check["detector"]

    checks = {key(c, old.get("monitor", "")): c for c in old.get("checks", [])}
    checks |= {key(c, new.get("monitor", "")): c for c in new.get("checks", [])}
    monitors = sorted({m for m, _ in checks if m})
    merged = new | {"checks": list(checks.values()), "monitors": monitors}
    if old.get("diagnosis") or new.get("diagnosis"):
        merged["diagnosis"] = merge_numbers(old.get("diagnosis") or {}, new.get("diagnosis") or {})
    return merged


def file_incident(session: Session, body: IncidentCreate, source: str = "manual") -> Incident:
    """An incident filed by a person (or imported): tags given are confirmed by its author."""
    index = load_index(session)
    _check_tags(index, body.tags, "body.tags")
    opened = to_utc(body.opened_at) if body.opened_at else utcnow()
    incident = Incident(
        title=body.title, summary=body.summary, severity=body.severity.value,
        severity_rule=f"set by {body.author}", source=source, owner=body.owner, affected_models=body.models,
        affected_pipelines=body.pipelines, impact=body.impact, impact_numbers=body.impact_numbers,
        impact_started_at=to_utc(body.impact_started_at) if body.impact_started_at else None,
        opened_at=opened, updated_at=opened)
    session.add(incident)
    session.flush()
    assert incident.id is not None
    for tag in dict.fromkeys(body.tags):
        session.add(IncidentTag(incident_id=incident.id, tag=tag, confidence="confirmed", source="person",
                                author=body.author))
    add_entry(session, incident.id, "filed", f"Filed by {body.author}", source="human", author=body.author,
              at=opened)
    refresh_document(session, incident)
    return incident


def update_incident(session: Session, incident: Incident, body: IncidentUpdate) -> Incident:
    """Apply edited fields; each change goes on the timeline."""
    assert incident.id is not None
    changes = body.model_dump(exclude_unset=True, exclude={"author"})
    renames = {"models": "affected_models", "pipelines": "affected_pipelines"}
    changed = []
    for name, value in changes.items():
        attribute = renames.get(name, name)
        value = value.value if hasattr(value, "value") else value
        if getattr(incident, attribute) != value:
            setattr(incident, attribute, value)
            changed.append(name)
    if "severity" in changed:
        incident.severity_rule = f"set by {body.author}"
    if changed:
        incident.updated_at = utcnow()
        session.add(incident)
        add_entry(session, incident.id, "update", f"Changed {', '.join(changed)}", source="human",
                  author=body.author, details={k: changes[k] for k in changed})
        refresh_document(session, incident)
    return incident


def transition(session: Session, incident: Incident, to: Status | str, author: str, reason: str) -> Incident:
    """Move an incident along its lifecycle ('reopen' goes back to open)."""
    assert incident.id is not None
    target = Status.open if to == "reopen" else Status(to)
    before = incident.status
    tags = list(session.exec(select(IncidentTag).where(IncidentTag.incident_id == incident.id)).all())
    lifecycle.apply_transition(incident, target, tags, load_index(session))
    if target == Status.open and incident.group_key is not None:
        if find_open(session, incident.group_key) is not None:
            raise Conflict("another incident of this model (or model and monitor) is active; resolve it before "
                           "reopening this one")
        incident.open_key = incident.group_key
    session.add(incident)
    text = f"{before} → {incident.status}" + (f": {reason}" if reason else "")
    add_entry(session, incident.id, "status", text, source="human", author=author,
              details={"from": before, "to": incident.status, "reason": reason})
    session.flush()
    refresh_document(session, incident)
    done = "Reopened" if target == Status.open else incident.status.replace("_", " ").capitalize()
    incident_changed(session, incident.id, f"{done} by {author}" + (f": {reason}" if reason else ""))
    return incident


def add_note(session: Session, incident: Incident, author: str, text: str) -> None:
    """A human note on the timeline (searchable)."""
    assert incident.id is not None
    add_entry(session, incident.id, "note", text, source="human", author=author)
    session.flush()
    refresh_document(session, incident)


def decide_tag(session: Session, incident: Incident, key: str, confidence: str, author: str) -> None:
    """Add, confirm or reject a taxonomy tag."""
    assert incident.id is not None
    _check_tags(load_index(session), [key], "path.tag")
    tag = session.exec(select(IncidentTag).where(IncidentTag.incident_id == incident.id,
                                                 IncidentTag.tag == key)).first()
    if tag is None:
        tag = IncidentTag(incident_id=incident.id, tag=key, source="person")
    tag.confidence, tag.author = confidence, author
    session.add(tag)
    add_entry(session, incident.id, "tag", f"{confidence} tag {key}", source="human", author=author)
    session.flush()
    refresh_document(session, incident)


def add_action_item(session: Session, incident: Incident, body: ActionItemCreate) -> ActionItem:
    """A follow-up with owner and due date."""
    assert incident.id is not None
    item = ActionItem(incident_id=incident.id, title=body.title, owner=body.owner, due=body.due)
    session.add(item)
    add_entry(session, incident.id, "action_item", f"Action item: {body.title}", source="human",
              author=body.author)
    session.flush()
    refresh_document(session, incident)
    return item


def update_action_item(session: Session, incident: Incident, item_id: int, body: ActionItemUpdate) -> ActionItem:
    """Change an action item's status, owner or due date."""
    item = session.get(ActionItem, item_id)
    if item is None or item.incident_id != incident.id:
        raise NotFound(f"no action item {item_id} on incident {incident.id}")
    for name, value in body.model_dump(exclude_unset=True, exclude={"author"}).items():
        setattr(item, name, value)
    item.updated_at = utcnow()
    session.add(item)
    assert incident.id is not None
    add_entry(session, incident.id, "action_item", f"Action item '{item.title}' is {item.status}",
              source="human", author=body.author)
    session.flush()
    return item


def add_entry(session: Session, incident_id: int, kind: str, text: str, *, source: str = "automation",
              author: str = "watchtower", details: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    """Append a timeline entry."""
    session.add(TimelineEntry(incident_id=incident_id, kind=kind, source=source, author=author, text=text,
                              details=details or {}, at=at or utcnow()))


def mark_mitigated(session: Session, incident: Incident, at: datetime) -> None:
    """Record the first successful mitigation (automatic or manual) for time-to-mitigate."""
    if incident.mitigated_at is None:
        incident.mitigated_at = at
        session.add(incident)


def open_incidents_of(session: Session, model_id: int) -> list[Incident]:
    """Every active incident of a model (any monitor)."""
    return list(session.exec(select(Incident).where(Incident.model_id == model_id,
                                                    col(Incident.status).in_(ACTIVE_VALUES))).all())


def get_incident(session: Session, incident_id: int) -> Incident:
    """The incident, or NotFound."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def incident_read(session: Session, incident: Incident, public_url: str,
                  index: TaxonomyIndex | None = None) -> IncidentRead:
    """The API view of an incident, with timeline, tags, action items, similar incidents and durations."""
    from watchtower.registry.models import Monitor, MonitoredModel

    assert incident.id is not None
    index = index or load_index(session)
    model = session.get(MonitoredModel, incident.model_id) if incident.model_id else None
    monitor = session.get(Monitor, incident.monitor_id) if incident.monitor_id else None
    entries = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
                           .order_by(col(TimelineEntry.at), col(TimelineEntry.id))).all()
    tags = session.exec(select(IncidentTag).where(IncidentTag.incident_id == incident.id)
                        .order_by(col(IncidentTag.id))).all()
    items = session.exec(select(ActionItem).where(ActionItem.incident_id == incident.id)
                         .order_by(col(ActionItem.id))).all()
    revision = session.exec(select(func.max(WriteupRevision.revision))
                            .where(WriteupRevision.incident_id == incident.id)).one() or 0
    return IncidentRead(
        id=incident.id, title=incident.title, summary=incident.summary, severity=Severity(incident.severity),
        severity_rule=incident.severity_rule, status=Status(incident.status), source=incident.source,
        owner=incident.owner, model=model.name if model else None, monitor=monitor.name if monitor else None,
        affected_models=incident.affected_models, affected_pipelines=incident.affected_pipelines,
        impact=incident.impact, impact_numbers=incident.impact_numbers | _served_by_fallback(session, incident),
        evidence=incident.evidence,
        tags=[TagRead(tag=t.tag, label=index.label(t.tag), confidence=t.confidence, source=t.source,
                      author=t.author, root_cause=index.is_root_cause(t.tag), score=t.score, reason=t.reason,
                      signature=t.signature) for t in tags],
        impact_started_at=incident.impact_started_at, opened_at=incident.opened_at,
        acknowledged_at=incident.acknowledged_at, mitigated_at=incident.mitigated_at,
        resolved_at=incident.resolved_at, completed_at=incident.completed_at,
        durations=lifecycle.durations(incident), url=incident_url(public_url, incident.id),
        timeline=[TimelineRead.model_validate(e, from_attributes=True) for e in entries],
        action_items=[action_item_read(session, i) for i in items],
        similar=similar_of(session, incident.id, index), writeup_revision=revision,
        caught_by=[GuardCatchRead.model_validate(e.details) for e in entries if e.kind == CAUGHT],
    )


def action_item_read(session: Session, item: ActionItem) -> ActionItemRead:
    """An action item as the API shows it; a guard with what it has done since it was added."""
    assert item.id is not None
    return ActionItemRead(id=item.id, title=item.title, owner=item.owner, due=item.due, status=item.status,
                          guard=guard_read(session, item))


def similar_of(session: Session, incident_id: int, index: TaxonomyIndex) -> list[SimilarRead]:
    """Linked past incidents, best first, with their confirmed root causes and how they were fixed."""
    links = session.exec(select(SimilarLink, Incident).join(Incident, col(SimilarLink.similar_id) == Incident.id)
                         .where(SimilarLink.incident_id == incident_id)
                         .order_by(col(SimilarLink.score).desc())).all()
    out = []
    for link, past in links:
        causes = session.exec(select(IncidentTag.tag).where(IncidentTag.incident_id == past.id,
                                                            IncidentTag.confidence == "confirmed")).all()
        fix = session.exec(select(TimelineEntry.text).where(
            TimelineEntry.incident_id == past.id, col(TimelineEntry.kind).in_(("restore", "status")),
            TimelineEntry.source == "human").order_by(col(TimelineEntry.at).desc())).first()
        assert past.id is not None
        out.append(SimilarRead(id=past.id, title=past.title, status=past.status, score=link.score,
                               reasons=link.reasons, root_causes=[index.label(c) for c in causes], fixed_by=fix,
                               dismissed=link.dismissed))
    return out


def incident_url(public_url: str, incident_id: int) -> str:
    """Where a person reads the incident."""
    return f"{public_url.rstrip('/')}/postmortems/incidents/{incident_id}"


def _served_by_fallback(session: Session, incident: Incident) -> dict[str, float]:
    from sqlalchemy import text

    from watchtower.events.models import FALLBACK_SERVED, ServingEvent

    if incident.model_id is None:
        return {}
    # The condition spelled as the partial index's own: the databases use it only for the very same text.
    query = select(func.count()).select_from(ServingEvent).where(
        ServingEvent.model_id == incident.model_id, text(FALLBACK_SERVED), col(ServingEvent.ts) >= incident.opened_at)
    if incident.resolved_at is not None:
        query = query.where(col(ServingEvent.ts) <= incident.resolved_at)
    return {"predictions_served_by_fallback": float(session.exec(query).one())}


def _check_tags(index: TaxonomyIndex, keys: list[str], field: str) -> None:
    unknown = [k for k in keys if k not in index.nodes]
    if unknown:
        raise Invalid(f"unknown taxonomy tags {unknown}", errors=[field_error(field, f"unknown tag '{k}'")
                                                                 for k in unknown])
