"""A 2xx means committed: events survive `kill -9` of the server right after the response."""

import json
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests import factories
from tests.conftest import TOKEN
from tests.factories import BuiltModels
from tests.processes import database_url, start_serve
from watchtower.events.models import ServingEvent


def test_acknowledged_events_survive_kill_9(models: BuiltModels, db: Engine, tmp_path: Path) -> None:
    server = start_serve(database_url(db), tmp_path / "serve.log")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    reference = models.reference.to_csv(index=False).encode()
    registered = httpx.post(f"{server.base}/models", headers=headers, timeout=60, data={
        "spec": json.dumps(factories.tensor_spec())}, files={
        "primary": ("p.onnx", models.tensor_primary), "fallback": ("f.onnx", models.tensor_fallback),
        "reference": ("r.csv", reference)})
    assert registered.status_code == 201, registered.text
    rows = factories.make_frame(500, seed=4)[factories.NUMERIC].to_dict("records")
    events = [{"id": f"k{i}", "features": row} for i, row in enumerate(rows)]
    response = httpx.post(f"{server.base}/models/churn/events", headers=headers, json={"events": events}, timeout=60)
    assert response.status_code == 200 and response.json()["accepted"] == 500
    server.kill()  # no shutdown hooks, no flush: only what was committed survives
    with Session(db) as session:
        assert session.exec(select(func.count()).select_from(ServingEvent)).one() == 500
