"""A 2xx means committed: events survive `kill -9` of the server right after the response."""

import json
import threading
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests import factories
from tests.conftest import TOKEN
from tests.factories import BuiltModels
from tests.processes import Server, database_url, start_serve
from watchtower.events.models import ServingEvent

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


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


def _register(server: Server, models: BuiltModels) -> None:
    registered = httpx.post(f"{server.base}/models", headers=HEADERS, timeout=60, data={
        "spec": json.dumps(factories.tensor_spec())}, files={
        "primary": ("p.onnx", models.tensor_primary), "fallback": ("f.onnx", models.tensor_fallback),
        "reference": ("r.csv", models.reference.to_csv(index=False).encode())})
    assert registered.status_code == 201, registered.text


def _predict_until_killed(server: Server, clients: int, per_client: int, kill_after: int) -> tuple[set[str], int]:
    """`clients` threads predicting one row at a time; kill -9 once `kill_after` answers came back.
    Return the acknowledged ids and how many requests were sent."""
    acked: set[str] = set()
    sent = [0]
    lock = threading.Lock()
    row = {"f1": 0.1, "f2": 0.2, "f3": 0.3, "f4": 0.4}

    def client(k: int) -> None:
        with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as http:
            for i in range(per_client):
                event_id = f"c{k}-{i}"
                with lock:
                    sent[0] += 1
                try:
                    response = http.post("/models/churn/predict", json={"instances": [row], "ids": [event_id]})
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code == 200:
                    with lock:
                        acked.add(event_id)
                        if len(acked) == kill_after:
                            server.kill()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.kill()
    return acked, sent[0]


def _stored_ids(db: Engine) -> set[str]:
    with Session(db) as session:
        return set(session.exec(select(ServingEvent.event_id)).all())


def test_acknowledged_durable_predictions_survive_kill_9(models: BuiltModels, db: Engine, tmp_path: Path) -> None:
    server = start_serve(database_url(db), tmp_path / "serve.log", LOG_MODE="durable")
    _register(server, models)
    acked, _ = _predict_until_killed(server, clients=8, per_client=40, kill_after=150)
    assert len(acked) >= 150
    assert acked <= _stored_ids(db)  # every answered prediction was committed before its answer
    restarted = start_serve(database_url(db), tmp_path / "restart.log", LOG_MODE="durable")
    try:  # the restarted server serves on and stores again
        after = httpx.post(f"{restarted.base}/models/churn/predict", headers=HEADERS, timeout=30,
                           json={"instances": [{"f1": 0, "f2": 0, "f3": 0, "f4": 0}], "ids": ["after"]})
        assert after.status_code == 200 and "after" in _stored_ids(db)
    finally:
        restarted.stop()


def test_async_loses_at_most_the_buffer_on_kill_9(models: BuiltModels, db: Engine, tmp_path: Path) -> None:
    bound = 100  # WATCHTOWER_LOG_BUFFER_EVENTS: what async mode may hold unstored
    server = start_serve(database_url(db), tmp_path / "serve.log", LOG_MODE="async", LOG_BUFFER_EVENTS=str(bound),
                         LOG_FLUSH_MS="10000", LOG_FLUSH_EVENTS="30")
    _register(server, models)
    acked, sent = _predict_until_killed(server, clients=8, per_client=50, kill_after=250)
    stored = _stored_ids(db)
    assert len(acked) >= 250 and stored <= {f"c{k}-{i}" for k in range(8) for i in range(50)}
    assert len(acked - stored) <= bound  # answered but lost: at most what the buffer holds
    assert len(stored) >= len(acked) - bound
