"""/healthz is liveness; /readyz fails (503, problem details naming what) on a dead database or a stalled monitor."""

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests import factories
from tests.factories import BuiltModels
from watchtower.app import create_app
from watchtower.clock import utcnow
from watchtower.db import make_engine, writer
from watchtower.registry.models import Monitor
from watchtower.scheduler import slots
from watchtower.settings import Settings


def _age_monitor(db: Engine, seconds: float) -> None:
    with Session(writer(db)) as session:
        monitor = session.exec(select(Monitor)).one()
        monitor.created_at = utcnow() - timedelta(seconds=seconds)
        session.add(monitor)
        session.commit()


def test_ready_while_monitors_run_on_time(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 60}])
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}


def test_a_monitor_without_a_recent_success_makes_it_unready(client: TestClient, models: BuiltModels,
                                                             db: Engine) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 60}])
    _age_monitor(db, 60 * 3 + 61)  # created more than 3 intervals and the grace ago, and never passed
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "30"
    [error] = response.json()["errors"]
    assert error["field"] == "monitor:churn:default" and "no successful pass since it was created" in error["reason"]
    assert client.get("/healthz").status_code == 200  # alive all the same: restarting would not help

    now = utcnow()
    slots.beat_failure(db, "monitor:churn:default", interval_s=60, holder="h", at=now, error="KeyError: 'f1'")
    assert "last error: KeyError: 'f1'" in client.get("/readyz").json()["errors"][0]["reason"]
    with Session(writer(db)) as session:  # a success within the allowed age makes it ready again
        from watchtower.scheduler.models import JobHeartbeat

        beat = session.get(JobHeartbeat, "monitor:churn:default")
        assert beat is not None
        beat.last_success_at = now - timedelta(seconds=100)
        session.add(beat)
        session.commit()
    assert client.get("/readyz").status_code == 200


def test_an_unreachable_database_is_named(tmp_path: Path, settings: Settings) -> None:
    gone = make_engine(f"sqlite:///{tmp_path}/no/such/dir/watchtower.db")
    with TestClient(create_app(settings, engine=gone)) as client:
        response = client.get("/readyz")
        alive = client.get("/healthz")
    assert response.status_code == 503
    [error] = response.json()["errors"]
    assert error["field"] == "database" and "unreachable" in error["reason"]
    assert alive.status_code == 200  # liveness does not depend on the database
