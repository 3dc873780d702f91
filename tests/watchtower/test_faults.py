"""Database faults never end the loop: a real `watchtower serve` keeps running its jobs afterwards.

PostgreSQL: the test terminates the server's own backends (found by application_name) every 50 ms, as a
failover or a connection reaper would. SQLite: the test holds the write lock past the busy timeout.
The shared PostgreSQL server is never stopped.
"""

import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests import factories
from tests.factories import BuiltModels
from tests.processes import Server, database_url, metric, start_serve
from watchtower.scheduler.models import JobRun

JOB = "monitor:churn:default"
FAULT_S = 6.0


def _ok_runs(db: Engine) -> int:
    with Session(db) as session:
        return len(session.exec(select(JobRun.id).where(JobRun.job == JOB, JobRun.status == "ok")).all())


def _wait(what: str, predicate: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _terminate_backends(db: Engine, application: str) -> None:
    """pg_terminate_backend on the server's connections every 50 ms for FAULT_S seconds."""
    end = time.monotonic() + FAULT_S
    with db.connect() as conn:
        while time.monotonic() < end:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"),
                         {"a": application})
            conn.commit()
            time.sleep(0.05)


def _hold_write_lock(db: Engine) -> None:
    """BEGIN IMMEDIATE on the test's own connection for FAULT_S seconds: every writer times out meanwhile."""
    conn = sqlite3.connect(str(db.url.database), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    time.sleep(FAULT_S)
    conn.execute("ROLLBACK")
    conn.close()


def test_the_loop_survives_database_faults(client: TestClient, models: BuiltModels, db: Engine,
                                           tmp_path: Path) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 1, "min_events": 20,
                                                         "detectors": [{"name": "stat_drift"}]}])
    factories.serve(client, "churn", factories.make_frame(100, seed=5))
    url, application = database_url(db), f"wt-fault-{uuid.uuid4().hex[:8]}"
    postgres = db.dialect.name == "postgresql"
    if postgres:
        url += f"?application_name={application}"
    server: Server = start_serve(url, tmp_path / "serve.log", SCHEDULER_ENABLED="true", LEASE_TTL_S="3",
                                 LEASE_RENEW_S="0.5", OUTBOX_INTERVAL_S="1", SQLITE_BUSY_TIMEOUT_S="1")
    try:
        _wait("the first monitor passes", lambda: _ok_runs(db) >= 2)
        _terminate_backends(db, application) if postgres else _hold_write_lock(db)
        after = _ok_runs(db)
        _wait("monitor passes after the fault", lambda: _ok_runs(db) >= after + 3)
        assert server.process.poll() is None
        failures = (metric(server, "watchtower_job_runs_total", outcome="error")
                    + metric(server, "watchtower_scheduler_lease_failures_total"))
        assert failures > 0, "the fault never reached the scheduler: the test proves nothing"
        assert metric(server, "watchtower_scheduler_leader") == 1
        assert httpx.get(f"{server.base}/healthz").status_code == 200
        _wait("readiness", lambda: httpx.get(f"{server.base}/readyz").status_code == 200, 30)
        assert "Exception in thread" not in server.log.read_text()
    finally:
        server.stop()
