"""A 2xx means committed: events survive `kill -9` of the server right after the response."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests import factories
from tests.conftest import TOKEN
from tests.factories import BuiltModels
from watchtower.events.models import ServingEvent


@pytest.fixture
def server(db: Engine) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`watchtower serve` as its own process on the test database."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = os.environ | {"WATCHTOWER_DATABASE_URL": db.url.render_as_string(hide_password=False),
                        "WATCHTOWER_API_TOKEN": TOKEN, "WATCHTOWER_SCHEDULER_ENABLED": "false"}
    process = subprocess.Popen([sys.executable, "-m", "watchtower.cli", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "watchtower serve exited"
        assert time.monotonic() < deadline, "watchtower serve did not come up"
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield process, base
    if process.poll() is None:
        process.kill()
    process.wait()


def test_acknowledged_events_survive_kill_9(server: tuple[subprocess.Popen[bytes], str], models: BuiltModels,
                                             db: Engine) -> None:
    process, base = server
    headers = {"Authorization": f"Bearer {TOKEN}"}
    reference = models.reference.to_csv(index=False).encode()
    registered = httpx.post(f"{base}/models", headers=headers, timeout=60, data={
        "spec": json.dumps(factories.tensor_spec())}, files={
        "primary": ("p.onnx", models.tensor_primary), "fallback": ("f.onnx", models.tensor_fallback),
        "reference": ("r.csv", reference)})
    assert registered.status_code == 201, registered.text
    rows = factories.make_frame(500, seed=4)[factories.NUMERIC].to_dict("records")
    events = [{"id": f"k{i}", "features": row} for i, row in enumerate(rows)]
    response = httpx.post(f"{base}/models/churn/events", headers=headers, json={"events": events}, timeout=60)
    assert response.status_code == 200 and response.json()["accepted"] == 500
    os.kill(process.pid, signal.SIGKILL)  # no shutdown hooks, no flush: only what was committed survives
    process.wait()
    with Session(db) as session:
        assert session.exec(select(func.count()).select_from(ServingEvent)).one() == 500
