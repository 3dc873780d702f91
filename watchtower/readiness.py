"""/readyz: can this process do its job? The database answers, and no monitor has stopped running.

/healthz stays a liveness check (the process answers); readiness also fails when the scheduled loop has
stalled anywhere, since the heartbeats live in the shared database.
"""

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from watchtower.errors import field_error
from watchtower.registry.models import Monitor, MonitoredModel
from watchtower.scheduler.models import JobHeartbeat
from watchtower.scheduler.slots import job_id

GRACE = timedelta(seconds=60)  # a pass may run late by a scheduler tick or a slow window read


def problems(engine: Engine, now: datetime, stale_intervals: float) -> list[dict[str, str]]:
    """What keeps this process from being ready, as problem `errors` entries; empty when ready."""
    try:
        with Session(engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            monitors = session.exec(select(MonitoredModel.name, Monitor.name, Monitor.interval_s, Monitor.created_at)
                                    .join(Monitor).where(col(MonitoredModel.archived_at).is_(None))).all()
            beats = {b.job: b for b in session.exec(select(JobHeartbeat)).all()}
    except Exception as exc:  # any failure to read is the answer: the database is not usable
        return [field_error("database", f"unreachable: {type(exc).__name__}: {str(exc)[:300]}")]
    found = []
    for model, monitor, interval_s, created_at in monitors:
        beat = beats.get(job_id(model, monitor))
        last = beat.last_success_at if beat and beat.last_success_at else created_at
        allowed = timedelta(seconds=interval_s * stale_intervals) + GRACE
        if now - last > allowed:
            never = beat is None or beat.last_success_at is None
            reason = (f"no successful pass since it was created {_ago(now, last)}" if never
                      else f"last successful pass {_ago(now, last)}")
            reason += f", every {interval_s} s expected"
            if beat and beat.last_error:
                reason += f"; last error: {beat.last_error[:300]}"
            found.append(field_error(f"monitor:{model}:{monitor}", reason))
    return found


def _ago(now: datetime, then: datetime) -> str:
    return f"{int((now - then).total_seconds())} s ago ({then:%Y-%m-%d %H:%M:%S} UTC)"
