"""The scheduled loop: one leader (lease + fencing epoch), each slot once, errors never end it, restarts."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from tests import factories
from tests.factories import BuiltModels
from watchtower.checks.models import CheckRun
from watchtower.db import writer
from watchtower.registry.models import Monitor
from watchtower.runtime import Runtime
from watchtower.scheduler import lease, slots
from watchtower.scheduler.models import JobHeartbeat, JobRun
from watchtower.scheduler.supervisor import MonitorScheduler
from watchtower.settings import Settings

T0 = 1_800_000_000.0  # a fixed Unix time, a multiple of 60


def _count_runs(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(CheckRun)).one())


def _wait(predicate: Callable[[], bool], timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def failing(engine: Engine, table: str) -> Iterator[list[int]]:
    """Every statement touching `table` on this engine raises OperationalError, as during a database outage."""
    raised: list[int] = []

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if table in statement:
            raised.append(1)
            raise OperationalError(statement, {}, Exception("injected: server closed the connection"))

    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield raised
    finally:
        event.remove(engine, "before_cursor_execute", fail)


def test_one_leader_until_its_lease_expires_then_a_new_epoch(db: Engine) -> None:
    assert lease.hold(db, "a", None, ttl_s=30, now=T0) == 1
    assert lease.hold(db, "b", None, ttl_s=30, now=T0 + 1) is None
    assert lease.hold(db, "a", 1, ttl_s=30, now=T0 + 10) == 1  # renewed: good until T0 + 40
    assert lease.hold(db, "b", None, ttl_s=30, now=T0 + 39) is None
    assert lease.hold(db, "b", None, ttl_s=30, now=T0 + 40) == 2
    assert lease.hold(db, "a", 1, ttl_s=30, now=T0 + 41) is None  # a's epoch is gone: it must step down
    lease.release(db, "b", 2, now=T0 + 42)
    assert lease.hold(db, "a", None, ttl_s=30, now=T0 + 42) == 3


def test_a_slot_runs_once_and_a_stale_epoch_cannot_claim(db: Engine) -> None:
    at = datetime.fromtimestamp(T0, UTC)
    assert lease.hold(db, "a", None, ttl_s=30, now=T0) == 1
    assert slots.claim(db, "outbox", slots.slot_of(T0, 10), holder="a", epoch=1, at=at)
    assert not slots.claim(db, "outbox", slots.slot_of(T0 + 9.9, 10), holder="a", epoch=1, at=at)
    assert lease.hold(db, "b", None, ttl_s=30, now=T0 + 31) == 2
    # a still believes it leads (its renewal thread stalled): its claims are fenced off by the epoch.
    assert not slots.claim(db, "outbox", slots.slot_of(T0 + 40, 10), holder="a", epoch=1, at=at)
    assert slots.claim(db, "outbox", slots.slot_of(T0 + 40, 10), holder="b", epoch=2, at=at)


@pytest.fixture
def supervisor(settings: Settings, db: Engine) -> Iterator[MonitorScheduler]:
    scheduler = MonitorScheduler(Runtime(settings, db), holder="test-holder")
    yield scheduler
    if scheduler.scheduler.running:
        scheduler.shutdown()


def test_a_failing_job_is_recorded_and_the_next_slot_runs(supervisor: MonitorScheduler, db: Engine) -> None:
    supervisor.tick(now=T0)
    assert supervisor.leading

    def broken() -> None:
        raise RuntimeError("detector exploded")

    assert supervisor.run_slot("probe", 60, broken, now=T0) == "error"
    assert supervisor.run_slot("probe", 60, broken, now=T0 + 1) == "slot_taken"
    with Session(db) as session:
        beat = session.get(JobHeartbeat, "probe")
        assert beat is not None and beat.consecutive_failures == 1 and beat.last_success_at is None
        assert beat.last_error == "RuntimeError: detector exploded"
        assert session.exec(select(JobRun.status)).all() == ["error"]
    ran: list[int] = []
    assert supervisor.run_slot("probe", 60, lambda: ran.append(1), now=T0 + 60) == "ok"
    with Session(db) as session:
        beat = session.get(JobHeartbeat, "probe")
        assert beat is not None and beat.consecutive_failures == 0 and beat.last_success_at is not None
    assert ran == [1]
    metrics = supervisor.runtime.metrics.registry
    assert metrics.get_sample_value("watchtower_job_runs_total", {"job": "probe", "outcome": "error"}) == 1
    assert metrics.get_sample_value("watchtower_job_runs_total", {"job": "probe", "outcome": "slot_taken"}) == 1


def test_a_database_outage_is_survived_and_counted(supervisor: MonitorScheduler, db: Engine) -> None:
    supervisor.tick(now=T0)
    with failing(db, "job_run") as raised:
        assert supervisor.run_slot("probe", 60, lambda: None, now=T0) == "error"
    assert raised
    with Session(db) as session:
        beat = session.get(JobHeartbeat, "probe")
        assert beat is not None and beat.last_error is not None and "claim failed" in beat.last_error
    with failing(db, "scheduler_lease"):
        supervisor.tick(now=T0 + 5)  # cannot renew, but the lease cannot have expired yet: still leading
        assert supervisor.leading
        supervisor.tick(now=T0 + 31)  # it may have expired: step down rather than risk two leaders
        assert not supervisor.leading
    assert supervisor.runtime.metrics.registry.get_sample_value("watchtower_scheduler_lease_failures_total") == 2
    supervisor.tick(now=T0 + 32)
    assert supervisor.leading
    assert supervisor.run_slot("probe", 60, lambda: None, now=T0 + 60) == "ok"


def test_followers_do_not_run_jobs(settings: Settings, db: Engine) -> None:
    leader = MonitorScheduler(Runtime(settings, db), holder="leader")
    follower = MonitorScheduler(Runtime(settings, db), holder="follower")
    leader.tick(now=T0)
    follower.tick(now=T0)
    assert leader.leading and not follower.leading
    assert follower.run_slot("probe", 60, lambda: None, now=T0) == "not_leader"
    for s in (leader, follower):
        s.scheduler.shutdown(wait=False)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread dies on purpose
def test_a_dead_scheduler_thread_is_replaced(supervisor: MonitorScheduler) -> None:
    supervisor.start()
    dead = supervisor.scheduler

    def explode(*args: Any) -> float:
        raise OperationalError("SELECT", {}, Exception("injected"))

    dead._process_jobs = explode  # type: ignore[method-assign]
    dead.wakeup()  # its main loop calls _process_jobs and the thread dies, as APScheduler's did on a DB error
    assert _wait(lambda: not dead._thread.is_alive(), 10)  # type: ignore[attr-defined]
    supervisor.tick()
    assert supervisor.scheduler is not dead and supervisor.scheduler._thread.is_alive()  # type: ignore[attr-defined]
    assert supervisor.runtime.metrics.registry.get_sample_value("watchtower_scheduler_restarts_total") == 1
    assert {"outbox", "thresholds", "compact", "escalations"} <= set(supervisor.job_ids())


def test_scheduled_monitor_runs_and_a_restart_catches_up_once(client: TestClient, models: BuiltModels,
                                                              settings: Settings, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 1, "detectors": [{"name": "stat_drift"}],
                                                         "min_events": 10}])
    factories.serve(client, "churn", factories.make_frame(20, seed=3))
    first = MonitorScheduler(Runtime(settings, db))
    first.start()
    assert _wait(lambda: _count_runs(db) >= 2)
    first.shutdown()
    ran = _count_runs(db)
    second = MonitorScheduler(Runtime(settings, db))
    second.start()  # the lease was released at shutdown: the second takes over at once
    assert second.leading and "monitor:churn:default" in second.job_ids()
    assert _wait(lambda: _count_runs(db) > ran)
    second.shutdown()
    with Session(db) as session:
        runs = session.exec(select(JobRun).where(JobRun.job == "monitor:churn:default")).all()
        check_runs = session.exec(select(CheckRun.created_at)).all()
    assert len({r.slot_start for r in runs}) == len(runs)  # (the key guarantees it) ...
    assert len(check_runs) == sum(r.status == "ok" for r in runs)  # ... and each slot made exactly one pass
    assert len({int(t.timestamp()) for t in check_runs}) == len(check_runs)  # never two passes in a second


def test_a_restart_skips_a_slot_that_already_ran(client: TestClient, models: BuiltModels, settings: Settings,
                                                 db: Engine) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 3600, "detectors": [{"name": "stat_drift"}]}])
    first = MonitorScheduler(Runtime(settings, db))
    first.start()
    assert _wait(lambda: _count_runs(db) == 1)  # a new monitor runs at once
    first.shutdown()
    second = MonitorScheduler(Runtime(settings, db))
    second.start()
    assert _wait(lambda: second.runtime.metrics.registry.get_sample_value(
        "watchtower_job_runs_total", {"job": "monitor:churn:default", "outcome": "slot_taken"}) == 1, 30)
    job = second.scheduler.get_job("monitor:churn:default")
    assert job is not None
    second.shutdown()
    assert _count_runs(db) == 1
    assert job.next_run_time.timestamp() % 3600 == 0  # slots are aligned: replicas agree on them


def test_sync_removes_jobs_of_deleted_monitors_and_reschedules(client: TestClient, models: BuiltModels,
                                                               supervisor: MonitorScheduler, db: Engine) -> None:
    # Jobs fire at multiples of their interval since the epoch: with 12 h and 24 h no pass can slip in between
    # (one that had written a check run would keep the monitor row from being deleted; with 600 s and 120 s
    # one did, when the test straddled a 2-minute boundary).
    factories.register_tensor(client, models, monitors=[{"interval_s": 43_200}])
    supervisor.start()
    with Session(writer(db)) as session:
        monitor = session.exec(select(Monitor)).one()
        monitor.interval_s = 86_400
        session.add(monitor)
        session.commit()
    supervisor.sync_jobs()
    job = supervisor.scheduler.get_job("monitor:churn:default")
    assert job is not None and job.trigger.interval.total_seconds() == 86_400
    assert set(supervisor.job_ids()) == {"monitor:churn:default", "outbox", "thresholds", "compact", "escalations"}
    with Session(writer(db)) as session:
        session.delete(session.exec(select(Monitor)).one())
        session.commit()
    supervisor.sync_jobs()
    assert set(supervisor.job_ids()) == {"outbox", "thresholds", "compact", "escalations"}


def test_jobs_keep_running_while_another_thread_holds_the_supervisor_lock(supervisor: MonitorScheduler) -> None:
    supervisor.start()
    done = threading.Event()
    with supervisor._lock:
        threading.Thread(target=lambda: (supervisor.run_slot("probe", 1, lambda: None), done.set())).start()
        assert done.wait(10)
