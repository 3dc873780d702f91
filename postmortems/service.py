"""Open, update, resolve and read incidents. Services add and flush; the caller commits."""

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from postmortems.models import Incident, IncidentRead, IncidentTag, Severity, Status, TimelineEntry, TimelineRead
from watchtower.clock import utcnow
from watchtower.errors import Conflict, NotFound


def open_key(model_id: int, monitor_id: int) -> str:
    """The value of Incident.open_key while an incident of this model+monitor is open."""
    return f"{model_id}:{monitor_id}"


def find_open(session: Session, model_id: int, monitor_id: int) -> Incident | None:
    """The open incident of a model+monitor, if any."""
    return session.exec(select(Incident).where(Incident.open_key == open_key(model_id, monitor_id))).first()


def open_or_append(
    session: Session, *, model_id: int, monitor_id: int, title: str, summary: str, severity: str,
    evidence: dict[str, Any], tags: list[str], search_text: str, at: datetime,
) -> tuple[Incident, bool]:
    """Open an incident for this model+monitor, or add the breach to the one already open.

    Returns (incident, created). The unique open_key makes a concurrent second opener fail
    inside its savepoint and append instead.
    """
    existing = find_open(session, model_id, monitor_id)
    if existing is None:
        incident = Incident(title=title, summary=summary, severity=severity, model_id=model_id,
                            monitor_id=monitor_id, open_key=open_key(model_id, monitor_id), evidence=evidence,
                            search_text=search_text, opened_at=at)
        try:
            with session.begin_nested():
                session.add(incident)
                session.flush()
        except IntegrityError:
            existing = find_open(session, model_id, monitor_id)
            assert existing is not None, "open_key conflict without an open incident"
        else:
            assert incident.id is not None
            for tag in tags:
                session.add(IncidentTag(incident_id=incident.id, tag=tag, confidence="suggested"))
            add_entry(session, incident.id, "breach", summary, details=evidence, at=at)
            return incident, True
    assert existing.id is not None
    add_entry(session, existing.id, "breach", f"Breached again: {summary}", details=evidence, at=at)
    if severity < existing.severity:  # "SEV2" < "SEV3": a worse breach raises the incident's severity
        add_entry(session, existing.id, "severity", f"Severity raised from {existing.severity} to {severity}",
                  details={"rule": evidence.get("severity_rule")}, at=at)
        existing.severity = severity
        session.add(existing)
    return existing, False


def add_entry(session: Session, incident_id: int, kind: str, text: str, *, source: str = "automation",
              author: str = "watchtower", details: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    """Append a timeline entry."""
    session.add(TimelineEntry(incident_id=incident_id, kind=kind, source=source, author=author, text=text,
                              details=details or {}, at=at or utcnow()))


def open_incidents_of(session: Session, model_id: int) -> list[Incident]:
    """Every open incident of a model (any monitor)."""
    return list(session.exec(select(Incident).where(Incident.model_id == model_id,
                                                    Incident.status != Status.resolved.value)).all())


def get_incident(session: Session, incident_id: int) -> Incident:
    """The incident, or NotFound."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def resolve(session: Session, incident: Incident, author: str, reason: str) -> Incident:
    """Close an incident; a later breach of the same monitor opens a new one."""
    if incident.status == Status.resolved.value:
        raise Conflict(f"incident {incident.id} is already resolved")
    assert incident.id is not None
    incident.status, incident.resolved_at, incident.open_key = Status.resolved.value, utcnow(), None
    session.add(incident)
    add_entry(session, incident.id, "resolve", reason, source="human", author=author)
    session.flush()
    return incident


def tags_of(session: Session, incident_id: int) -> list[str]:
    """The incident's tag names, in the order they were added."""
    return list(session.exec(select(IncidentTag.tag).where(IncidentTag.incident_id == incident_id)
                             .order_by(col(IncidentTag.id))).all())


def incident_read(session: Session, incident: Incident, public_url: str) -> IncidentRead:
    """The API view of an incident with its timeline."""
    from watchtower.registry.models import Monitor, MonitoredModel

    assert incident.id is not None
    model = session.get(MonitoredModel, incident.model_id) if incident.model_id else None
    monitor = session.get(Monitor, incident.monitor_id) if incident.monitor_id else None
    entries = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
                           .order_by(col(TimelineEntry.at), col(TimelineEntry.id))).all()
    return IncidentRead(
        id=incident.id, title=incident.title, summary=incident.summary, severity=Severity(incident.severity),
        status=Status(incident.status), model=model.name if model else None, monitor=monitor.name if monitor else None,
        evidence=incident.evidence, tags=tags_of(session, incident.id), opened_at=incident.opened_at,
        resolved_at=incident.resolved_at, url=incident_url(public_url, incident.id),
        timeline=[TimelineRead.model_validate(e, from_attributes=True) for e in entries],
    )


def incident_url(public_url: str, incident_id: int) -> str:
    """Where a person reads the incident."""
    return f"{public_url.rstrip('/')}/postmortems/incidents/{incident_id}"
