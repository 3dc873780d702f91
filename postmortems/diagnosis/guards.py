"""Postmortems that become guards: an action item adds a detector to a monitor of the affected model, its check
runs carry the item's id, and a later incident it catches links back to the postmortem that created it."""

from typing import Any

from sqlmodel import Session, col, select

from postmortems.diagnosis.guard_status import CAUGHT, FIRED
from postmortems.diagnosis.proposals import GuardProposal, propose_guards
from postmortems.documents import refresh_document
from postmortems.models import ActionItem, Incident, TimelineEntry
from postmortems.schemas import ActionItemCreate, GuardProposalRead, GuardSpec
from postmortems.service import add_action_item, add_entry
from watchtower.checks.models import CheckRun
from watchtower.errors import Invalid, field_error
from watchtower.registry.models import Monitor, MonitoredModel, ReferenceData
from watchtower.registry.service import detector_errors


def resolve_guard(session: Session, incident: Incident, spec: GuardSpec) -> tuple[MonitoredModel, Monitor]:
    """The model and monitor a guard goes on, its params checked by the detector registry; Invalid naming the
    field otherwise (a model the incident did not affect, a monitor the model lacks, a bad param)."""
    mine = session.get(MonitoredModel, incident.model_id) if incident.model_id else None
    allowed = ([mine.name] if mine else []) + [m for m in incident.affected_models if not mine or m != mine.name]
    name = spec.model or (allowed[0] if allowed else None)
    if name is None or name not in allowed:
        raise Invalid("a guard goes on a model the incident affected", errors=[field_error(
            "body.guard.model", f"must be one of the incident's models {allowed}" if allowed
            else "name the model: the incident names none")])
    model = session.exec(select(MonitoredModel).where(MonitoredModel.name == name)).first()
    if model is None:
        raise Invalid(f"no model named '{name}'", errors=[field_error("body.guard.model", "no such model")])
    monitor = session.exec(select(Monitor).where(Monitor.model_id == model.id, Monitor.name == spec.monitor)).first()
    if monitor is None:
        known = sorted(session.exec(select(Monitor.name).where(Monitor.model_id == model.id)).all())
        raise Invalid(f"model '{name}' has no monitor '{spec.monitor}'",
                      errors=[field_error("body.guard.monitor", f"not a monitor of model '{name}'; its monitors: "
                                                                f"{known}")])
    errors = detector_errors(spec.detector, dict(spec.params), "body.guard.detector", "body.guard.params")
    numeric = {f["name"] for f in model.features if f["type"] == "numeric"}
    features = spec.params.get("features")
    if not errors and spec.detector == "out_of_range" and isinstance(features, list):
        errors += [field_error(f"body.guard.params.features.{i}", f"not a numeric feature of model '{name}'")
                   for i, f in enumerate(features) if f not in numeric]
    if errors:
        raise Invalid("invalid guard; nothing was stored", errors=errors)
    return model, monitor


def add_guard(session: Session, incident: Incident, item: ActionItem, spec: GuardSpec,
              target: tuple[MonitoredModel, Monitor], author: str) -> None:
    """Append the detector to the monitor, linked to the item and incident, and record it on the timeline."""
    model, monitor = target
    assert incident.id is not None and item.id is not None and monitor.id is not None
    params = dict(spec.params)
    link = {"incident_id": incident.id, "action_item_id": item.id}
    monitor.detectors = [*monitor.detectors, {"name": spec.detector, "params": params, "guard": link}]
    session.add(monitor)
    item.guard = {"model": model.name, "monitor": monitor.name, "monitor_id": monitor.id,
                  "detector": spec.detector, "params": params}
    session.add(item)
    add_entry(session, incident.id, "guard",
              f"Guard added to monitor {model.name}/{monitor.name}: {spec.detector} {_params(params)}",
              source="human", author=author, details={"action_item_id": item.id, **item.guard})
    session.flush()


def record_catches(session: Session, incident: Incident, evidence: dict[str, Any]) -> list[int]:
    """For each breached check of this breach that a guard ran, note "caught by guard from #N" on the incident
    and the catch on the guard's incident; once per guard and incident. Returns the source incident ids."""
    assert incident.id is not None
    run_ids = [c["check_run_id"] for c in evidence.get("checks", []) if c.get("status") == "breached"]
    if not run_ids:
        return []
    hits = session.exec(select(CheckRun, ActionItem).join(ActionItem, col(CheckRun.guard_item_id) == ActionItem.id)
                        .where(col(CheckRun.id).in_(run_ids))).all()
    noted = {d.get("action_item_id") for d in session.exec(select(TimelineEntry.details).where(
        TimelineEntry.incident_id == incident.id, TimelineEntry.kind == CAUGHT)).all()}
    sources = []
    for run, item in hits:
        if item.incident_id == incident.id or item.id in noted:
            continue
        noted.add(item.id)
        source = session.get(Incident, item.incident_id)
        assert source is not None
        details = {"incident_id": item.incident_id, "incident_title": source.title, "action_item_id": item.id,
                   "detector": run.detector, "monitor": (item.guard or {}).get("monitor", ""),
                   "check_run_id": run.id}
        add_entry(session, incident.id, CAUGHT, f"Caught by guard from #{item.incident_id} ({source.title}): "
                  f"{run.detector}, added by action item '{item.title}'", details=details, at=run.window_end)
        add_entry(session, item.incident_id, FIRED, f"Guard '{item.title}' fired and caught #{incident.id}",
                  details={"action_item_id": item.id, "caught_incident_id": incident.id}, at=run.window_end)
        sources.append(item.incident_id)
    if sources:
        session.flush()
        refresh_document(session, incident)
    return sources


def proposals_for(session: Session, incident: Incident) -> list[GuardProposalRead]:
    """Guards pre-filled from the incident's evidence, for its model (none for an incident without one)."""
    model = session.get(MonitoredModel, incident.model_id) if incident.model_id else None
    if model is None or not incident.evidence.get("checks"):
        return []
    run_ids = [c["check_run_id"] for c in incident.evidence["checks"] if c.get("check_run_id") is not None]
    params = {run_id: run_params for run_id, run_params in session.exec(
        select(CheckRun.id, CheckRun.params).where(col(CheckRun.id).in_(run_ids))).all() if run_id is not None}
    proposals: list[GuardProposal] = propose_guards(incident.evidence, reference_ranges(session, model), params)
    return [GuardProposalRead(model=model.name, monitor=p.monitor, detector=p.detector, params=p.params,
                              reason=p.reason) for p in proposals]


def reference_ranges(session: Session, model: MonitoredModel) -> dict[str, tuple[float, float]]:
    """[min, max] of each numeric feature in the model's current reference profile."""
    data = session.exec(select(ReferenceData.profile).where(ReferenceData.model_id == model.id)
                        .order_by(col(ReferenceData.id).desc())).first()
    if data is None:
        return {}
    from detectors.profile import ReferenceProfile  # numpy and pandas: read when proposals are asked for

    profile = ReferenceProfile.from_bytes(data)
    return {name: (float(p.values[0]), float(p.values[-1])) for name, p in profile.numeric.items() if len(p.values)}


def _params(params: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else "(default params)"


def add_guard_item(session: Session, incident: Incident, body: ActionItemCreate) -> ActionItem:
    """An action item that is a guard: checked first (nothing is stored on a 422), then added with its detector."""
    assert body.guard is not None
    target = resolve_guard(session, incident, body.guard)
    item = add_action_item(session, incident, body)
    add_guard(session, incident, item, body.guard, target, body.author)
    return item
