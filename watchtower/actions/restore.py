"""Operator decisions that undo mitigations: restore the primary, resume the pipeline. Both are recorded, and
both hold the automatic action they undo (watchtower.policy.holds), so the next breaching pass does not redo it."""

from datetime import datetime

from sqlmodel import Session, select

from alerts.slack.updates import incident_changed
from postmortems.service import add_entry, open_incidents_of
from watchtower.actions.models import ActionRun
from watchtower.clock import utcnow
from watchtower.errors import Conflict
from watchtower.policy import holds
from watchtower.registry.models import MonitoredModel, Pipeline, Role
from watchtower.registry.service import current_version, version_label


def restore_primary(session: Session, model: MonitoredModel, author: str, reason: str,
                    hold_until: datetime | None = None, now: datetime | None = None) -> str:
    """Serve the primary again and hold automatic swaps; written to the audit log and the timeline of the
    model's open incidents."""
    assert model.id is not None
    now = now or utcnow()
    hold_until = holds.check_until(hold_until, now)
    if model.active_role == Role.primary:
        raise Conflict(f"model '{model.name}' is already served by its primary")
    model.active_role, model.swapped_at = Role.primary.value, utcnow()
    session.add(model)
    hold = holds.take(session, model.id, "swap_model", author, reason, now, hold_until)
    detail = (f"serving restored to {version_label(current_version(session, model.id, Role.primary))}; "
              f"automatic swap held {holds.lasts(hold)}")
    _record(session, model.id, "restore", detail, author, reason)
    return detail


def resume_pipeline(session: Session, pipeline: Pipeline, author: str, reason: str,
                    hold_until: datetime | None = None, now: datetime | None = None) -> str:
    """Unpause a pipeline and hold automatic pauses for every model it feeds; recorded for each of them."""
    now = now or utcnow()
    hold_until = holds.check_until(hold_until, now)
    if not pipeline.paused:
        raise Conflict(f"pipeline '{pipeline.name}' is not paused")
    pipeline.paused, pipeline.paused_at, pipeline.paused_reason, pipeline.updated_at = False, None, None, utcnow()
    session.add(pipeline)
    detail = f"pipeline '{pipeline.name}' resumed"
    for model_id in session.exec(select(MonitoredModel.id).where(MonitoredModel.pipeline_id == pipeline.id)).all():
        assert model_id is not None
        hold = holds.take(session, model_id, "pause_pipeline", author, reason, now, hold_until)
        _record(session, model_id, "resume", f"{detail}; automatic pause held {holds.lasts(hold)}", author, reason)
    return detail


def _record(session: Session, model_id: int, action: str, detail: str, author: str, reason: str) -> None:
    incident_ids: list[int | None] = [i.id for i in open_incidents_of(session, model_id)] or [None]
    for incident_id in incident_ids:
        session.add(ActionRun(model_id=model_id, incident_id=incident_id, action=action, ok=True,
                              detail=detail, author=author, reason=reason))
        if incident_id is not None:
            add_entry(session, incident_id, action, f"{detail}: {reason}", source="human", author=author,
                      details={"reason": reason})
            incident_changed(session, incident_id, f"{author}: {detail} ({reason})")
    session.flush()
