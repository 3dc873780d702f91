"""A database that cannot be reached is a 503 with Retry-After; a crash says `Connection: close`.

Outages are injected on the test's own engine (a closed port, a missing directory, terminating the test's own
backend), never by stopping the shared PostgreSQL server.
"""


import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import TOKEN, free_port
from watchtower.app import create_app
from watchtower.db import make_engine
from watchtower.settings import Settings


def unreachable_url(db: Engine, tmp_path: object) -> str:
    if db.dialect.name == "postgresql":
        return f"postgresql://postgres@127.0.0.1:{free_port()}/watchtower"
    return f"sqlite:///{tmp_path}/no-such-directory/watchtower.db"


@pytest.mark.parametrize(("method", "url", "body"), [
    ("GET", "/models", None), ("GET", "/incidents/1", None), ("GET", "/incidents", None),
    ("POST", "/incidents", {"title": "t", "author": "ana"}), ("GET", "/pipelines", None),
])
def test_an_unreachable_database_is_a_503_with_retry_after(db: Engine, settings: Settings, tmp_path: object,
                                                           method: str, url: str, body: object) -> None:
    engine = make_engine(unreachable_url(db, tmp_path))
    app = create_app(settings, engine=engine)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        response = client.request(method, url, json=body)
    engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert "retry" in response.json()["detail"]


def test_503_is_documented_with_its_retry_after_header(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/incidents"]["post"]
    assert operation["responses"]["503"]["headers"]["Retry-After"]
    assert {"400", "413", "422", "503"} <= operation["responses"].keys()


def test_terminated_postgresql_connections_are_replaced_not_reported(postgres_db: str) -> None:
    own = make_engine(postgres_db)  # this test's own pool: only its connections are terminated
    settings = Settings(database_url=postgres_db, scheduler_enabled=False, allowed_hosts="testserver",
                        api_token=TOKEN)
    app = create_app(settings, engine=own)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert client.get("/models").status_code == 200
        with own.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        other = make_engine(postgres_db)
        with other.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        other.dispose()
        assert client.get("/models").status_code == 200  # the pool's pre-ping noticed and reconnected
    own.dispose()


def test_a_500_closes_the_keep_alive_connection_and_says_so(app: FastAPI, live_server: str) -> None:
    def crash() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/crash-for-test", crash)
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        response = http.get("/crash-for-test")
        assert response.status_code == 500
        assert response.headers["connection"] == "close"
        assert response.headers["content-type"] == "application/problem+json"
        assert http.get("/healthz").status_code == 200  # the client opened a new connection, no surprise
