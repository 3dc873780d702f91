"""Job slots: each run of a job claims its time slot once, under the leader's epoch, and leaves a heartbeat.

Slots are aligned to the Unix epoch (`slot_of`), so every replica computes the same slot for the same
moment; the unique (job, slot_start) key lets exactly one claim win even while two leaders overlap.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from watchtower.db import writer
from watchtower.scheduler.lease import LEASE
from watchtower.scheduler.models import JobHeartbeat, JobRun

_CLAIM = text(
    "INSERT INTO job_run (job, slot_start, epoch, holder, status, started_at) "
    "SELECT :job, :slot, :epoch, :holder, 'running', :started "
    # The lease's own parameters: PostgreSQL deduces one type per parameter, and these compare other columns.
    "WHERE EXISTS (SELECT 1 FROM scheduler_lease WHERE name = :lease AND holder = :me AND epoch = :my_epoch) "
    "ON CONFLICT (job, slot_start) DO NOTHING"
).bindparams(bindparam("started", type_=JobRun.__table__.c.started_at.type))  # type: ignore[attr-defined]


def job_id(model: str, monitor: str) -> str:
    """The job (and heartbeat) name of one model's monitor."""
    return f"monitor:{model}:{monitor}"


def slot_of(now: float, interval_s: int) -> int:
    """The start (Unix seconds) of the slot that `now` falls in."""
    return int(now // interval_s) * interval_s


def claim(engine: Engine, job: str, slot: int, *, holder: str, epoch: int, at: datetime) -> bool:
    """Record that `holder` runs `job`'s slot; False if the slot already ran or `holder` no longer leads."""
    with writer(engine).begin() as conn:
        inserted = conn.execute(_CLAIM, {"job": job, "slot": slot, "epoch": epoch, "holder": holder,
                                         "started": at, "lease": LEASE, "me": holder, "my_epoch": epoch}).rowcount
    return bool(inserted)


def settle(engine: Engine, job: str, slot: int, *, interval_s: int, holder: str, at: datetime,
           error: str | None) -> None:
    """Record how the slot ended, in the run and in the job's heartbeat."""
    with Session(writer(engine)) as session:
        run = session.exec(select(JobRun).where(JobRun.job == job, JobRun.slot_start == slot)).one()
        run.status, run.finished_at, run.error = ("error" if error else "ok"), at, error
        session.add(run)
        beat = session.get(JobHeartbeat, job)
        failures = (beat.consecutive_failures if beat else 0) + 1 if error else 0
        values: dict[str, Any] = {"interval_s": interval_s, "holder": holder, "consecutive_failures": failures}
        values |= {"last_error_at": at, "last_error": error} if error else {"last_success_at": at}
        session.flush()
        _upsert_heartbeat(session, job, values)
        session.commit()


def beat_start(engine: Engine, job: str, *, interval_s: int, holder: str, at: datetime) -> None:
    """Note that the job started (so a run that hangs shows as started and never finished)."""
    with Session(writer(engine)) as session:
        _upsert_heartbeat(session, job, {"interval_s": interval_s, "holder": holder, "last_start_at": at})
        session.commit()


def beat_failure(engine: Engine, job: str, *, interval_s: int, holder: str, at: datetime, error: str) -> None:
    """Record a failure that happened before the slot could be claimed (e.g. the database was unreachable)."""
    with Session(writer(engine)) as session:
        beat = session.get(JobHeartbeat, job)
        _upsert_heartbeat(session, job, {
            "interval_s": interval_s, "holder": holder, "last_error_at": at, "last_error": error,
            "consecutive_failures": (beat.consecutive_failures if beat else 0) + 1})
        session.commit()


def prune(engine: Engine, *, keep_jobs: set[str], older_than: datetime) -> int:
    """Drop runs older than `older_than` and heartbeats of jobs that are no longer scheduled."""
    with Session(writer(engine)) as session:
        runs = session.execute(delete(JobRun).where(col(JobRun.started_at) < older_than)).rowcount  # type: ignore[attr-defined]
        gone = session.execute(delete(JobHeartbeat).where(col(JobHeartbeat.job).not_in(keep_jobs))).rowcount  # type: ignore[attr-defined]
        session.commit()
    return int(runs) + int(gone)


def history_cutoff(now: datetime, days: int) -> datetime:
    """How far back job runs are kept."""
    return now - timedelta(days=days)


def _upsert_heartbeat(session: Session, job: str, values: dict[str, Any]) -> None:
    # INSERT .. ON CONFLICT, not get-then-add: two overlapping leaders may write the same job's heartbeat.
    # Imported here, by the first job run: PostgreSQL's dialect costs ~25 ms, in `serve`'s start on SQLite.
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = JobHeartbeat.__table__  # type: ignore[attr-defined]
    stmt = dialect.insert(table).values(job=job, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["job"], set_=values))
