"""Replicas sharing one database reach the same segments: events served through one real `watchtower serve` are
read by the other's monitor, through a shared directory and through S3 (moto's server mode)."""

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests import factories
from tests.conftest import TOKEN
from tests.factories import BuiltModels
from tests.processes import Server, database_url, start_serve
from tests.watchtower.segstore_helpers import moto_s3, s3_location
from watchtower.checks.models import CheckRun
from watchtower.events.models import EventSegment

N_EVENTS = 300


@pytest.fixture(params=["directory", "s3"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "directory":
        yield str(tmp_path / "shared-segments")
        return
    with moto_s3() as endpoint:
        yield s3_location(endpoint, f"replicas-{uuid4().hex}")


def _checked(db: Engine) -> list[CheckRun]:
    with Session(db) as session:
        return list(session.exec(select(CheckRun).where(CheckRun.n_current > 0)).all())


def test_events_served_by_one_replica_are_checked_by_the_other(client: TestClient, models: BuiltModels, db: Engine,
                                                                shared_store: str, tmp_path: Path) -> None:
    factories.register_tensor(client, models, monitors=[{"interval_s": 1, "min_events": 50}])
    env = {"SEGMENT_STORE": shared_store, "MIN_WINDOW_EVENTS": "50"}
    servers: list[Server] = []
    try:
        servers.append(start_serve(database_url(db), tmp_path / "ingest.log", **env))  # no scheduler
        frame = factories.make_frame(N_EVENTS, seed=3)
        with httpx.Client(base_url=servers[0].base, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for start in range(0, N_EVENTS, 100):
                chunk = frame.iloc[start:start + 100][factories.NUMERIC].to_dict("records")
                assert http.post("/models/churn/predict", json={"instances": chunk}, timeout=60).status_code == 200
        with Session(db) as session:
            segments = session.exec(select(EventSegment)).all()
        assert segments and all(s.path and s.parquet is None for s in segments)  # files, not database bytes
        servers.append(start_serve(database_url(db), tmp_path / "monitor.log", SCHEDULER_ENABLED="true", **env))
        deadline = time.monotonic() + 90
        while not _checked(db):
            assert time.monotonic() < deadline, (tmp_path / "monitor.log").read_text()[-3000:]
            time.sleep(0.2)
        assert {run.n_current for run in _checked(db)} == {N_EVENTS}
    finally:
        for server in servers:
            server.stop()
