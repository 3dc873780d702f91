"""Status transitions (open -> acknowledged -> mitigated -> resolved -> postmortem complete; reopen), durations."""

from datetime import datetime

from alerts.metrics import Metrics
from postmortems.models import ACTIVE, Incident, IncidentTag, Status
from postmortems.schemas import Durations
from postmortems.taxonomy import TaxonomyIndex
from watchtower.clock import utcnow
from watchtower.errors import Conflict

ALLOWED: dict[Status, set[Status]] = {
    Status.open: {Status.acknowledged, Status.mitigated, Status.resolved},
    Status.acknowledged: {Status.mitigated, Status.resolved},
    Status.mitigated: {Status.acknowledged, Status.resolved},
    Status.resolved: {Status.postmortem_complete, Status.open},
    Status.postmortem_complete: {Status.open},
}


def apply_transition(incident: Incident, to: Status, tags: list[IncidentTag], index: TaxonomyIndex) -> None:
    """Move the incident to `to`, stamping when it got there; Conflict if the move is not allowed."""
    current = Status(incident.status)
    if to not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current]))
        raise Conflict(f"incident {incident.id} is {current.value}; it can move to: {allowed}")
    if to == Status.postmortem_complete:
        confirmed = [t.tag for t in tags if t.confidence == "confirmed" and index.is_root_cause(t.tag)]
        if not confirmed:
            raise Conflict("a postmortem cannot be completed without at least one confirmed root-cause tag")
    now = utcnow()
    if to == Status.acknowledged:
        incident.acknowledged_at = incident.acknowledged_at or now
    elif to == Status.mitigated:
        incident.acknowledged_at = incident.acknowledged_at or now
        incident.mitigated_at = incident.mitigated_at or now
    elif to == Status.resolved:
        incident.resolved_at = now
    elif to == Status.postmortem_complete:
        incident.completed_at = now
    elif to == Status.open:  # reopen: the clock for resolution starts over, the history stays on the timeline
        incident.resolved_at = incident.completed_at = None
    incident.status, incident.updated_at = to.value, now
    if to not in ACTIVE:
        incident.open_key = None


def durations(incident: Incident) -> Durations:
    """Time to detect, acknowledge, mitigate and resolve, in seconds."""

    def since(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None:
            return None
        return max(0.0, (end - start).total_seconds())

    return Durations(
        time_to_detect=since(incident.impact_started_at, incident.opened_at),
        time_to_acknowledge=since(incident.opened_at, incident.acknowledged_at),
        time_to_mitigate=since(incident.opened_at, incident.mitigated_at),
        time_to_resolve=since(incident.opened_at, incident.resolved_at),
    )


def observe_stage(metrics: Metrics, incident: Incident) -> None:
    """After a transition: feed watchtower_incident_stage_seconds for the stage reached (acknowledge, mitigate,
    resolve) and count acknowledgements. Called by every place a person moves an incident: API, pages, Slack."""
    stage = {"acknowledged": "acknowledge", "mitigated": "mitigate", "resolved": "resolve"}.get(incident.status)
    if stage == "acknowledge":
        metrics.acknowledgements.inc()
    spans = durations(incident).model_dump()
    if stage and spans[f"time_to_{stage}"] is not None:
        metrics.incident_stage.labels(stage).observe(spans[f"time_to_{stage}"])
