"""APScheduler jobs are persisted: a restarted scheduler resumes them and they run."""

import time

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests import factories
from tests.factories import BuiltModels
from watchtower.checks.models import CheckRun
from watchtower.runtime import Runtime
from watchtower.scheduler import MonitorScheduler, job_id
from watchtower.settings import Settings


def _wait_for_check_runs(engine: Engine, at_least: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine) as session:
            count = int(session.exec(select(func.count()).select_from(CheckRun)).one())
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def test_restart_resumes_persisted_jobs(client: TestClient, models: BuiltModels, settings: Settings,
                                        db: Engine) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 3600, "detectors": [{"name": "stat_drift"}]}])
    first = MonitorScheduler(Runtime(settings, db))
    first.start()
    assert job_id("churn", "default") in first.job_ids()
    next_run = first.scheduler.get_job(job_id("churn", "default")).next_run_time
    first.shutdown()

    second = MonitorScheduler(Runtime(settings, db))
    second.scheduler.start(paused=True)  # look at what the job store handed back before anything runs
    resumed = second.scheduler.get_job(job_id("churn", "default"))
    assert resumed is not None and resumed.next_run_time == next_run
    assert resumed.args == ("churn", "default")
    second.scheduler.shutdown()


def test_scheduled_monitor_runs_and_survives_a_restart(client: TestClient, models: BuiltModels,
                                                       settings: Settings, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 1, "detectors": [{"name": "stat_drift"}],
                                                         "min_events": 10}])
    factories.serve(client, "churn", factories.make_frame(20, seed=3))
    first = MonitorScheduler(Runtime(settings, db))
    first.start()
    ran = _wait_for_check_runs(db, 1)
    first.shutdown()
    assert ran >= 1
    second = MonitorScheduler(Runtime(settings, db))
    second.start()  # no sync needed: the job comes back from the database
    assert _wait_for_check_runs(db, ran + 1) > ran
    second.shutdown()


def test_sync_removes_jobs_of_deleted_monitors_and_reschedules(client: TestClient, models: BuiltModels,
                                                               settings: Settings, db: Engine) -> None:
    from watchtower.registry.models import Monitor

    factories.register_tensor(client, models, monitors=[{"interval_s": 600}])
    scheduler = MonitorScheduler(Runtime(settings, db))
    scheduler.start()
    try:
        with Session(db) as session:
            monitor = session.exec(select(Monitor)).one()
            monitor.interval_s = 120
            session.add(monitor)
            session.commit()
        scheduler.sync_jobs()
        job = scheduler.scheduler.get_job(job_id("churn", "default"))
        assert job.trigger.interval.total_seconds() == 120
        assert set(scheduler.job_ids()) == {"monitor:churn:default", "outbox", "sync", "thresholds", "compact"}
    finally:
        scheduler.shutdown()
