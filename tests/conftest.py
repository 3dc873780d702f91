"""Shared fixtures: a real database (SQLite and PostgreSQL), the app, real ONNX models, a Slack recorder."""

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import MetaData, Table, create_engine, insert, make_url, text
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

import watchtower.tables  # noqa: F401  (empty_tables deletes from every table on SQLModel.metadata)
from postmortems.models import Incident, IncidentDocument, IncidentTag, Taxonomy
from postmortems.taxonomy import ensure_builtin
from tests import factories
from watchtower.app import create_app
from watchtower.clock import utcnow
from watchtower.db import make_engine, migrate
from watchtower.runtime import Runtime
from watchtower.settings import Settings

TOKEN = "test-token"
POSTGRES_URL = os.environ.get("WATCHTOWER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _wipe(engine: Engine) -> None:
    """Drop every table (ours, Alembic's, APScheduler's) so migrations run from scratch."""
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's `--dist loadgroup`: one group per test file and database, so a file's module-scoped
    set-up (a browser, Spark, a seeded app) is made once per database while the two databases of a file may
    run on different workers."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        database = callspec.params.get("engine") if callspec is not None else None
        group = item.nodeid.split("::")[0] + (f"[{database}]" if database else "")
        item.add_marker(pytest.mark.xdist_group(group))


def postgres_url(worker: str) -> str:
    """The configured PostgreSQL database, or under pytest-xdist one per worker (`<name>_gw0`, created on first
    use on the same server), so parallel workers never share tables."""
    if worker == "master":
        return POSTGRES_URL
    url = make_url(POSTGRES_URL)
    name = f"{url.database}_{worker}"
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        server.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def migrated_engines(worker_id: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    """Each database migrated once per run (per worker), however often tests switch between them: with
    pytest-xdist a worker's tests alternate between SQLite and PostgreSQL, and a session-scoped parametrized
    fixture is set up again at every switch."""
    engines: dict[str, Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """pytest-xdist's worker name (gw0, gw1, ...), or "master" without it."""
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "master"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, migrated_engines: dict[str, Engine], worker_id: str,
           tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """A migrated database; PostgreSQL must be reachable: the tests fail, never skip, without it."""
    return _migrated(request.param, migrated_engines, worker_id, tmp_path_factory)


@pytest.fixture
def postgres_db(migrated_engines: dict[str, Engine], worker_id: str,
                tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of the run's (the worker's) migrated PostgreSQL database, for a test that makes its own engine."""
    return _migrated("postgresql", migrated_engines, worker_id, tmp_path_factory).url.render_as_string(
        hide_password=False)


def _migrated(kind: str, engines: dict[str, Engine], worker_id: str, tmp: pytest.TempPathFactory) -> Engine:
    if kind not in engines:
        url = f"sqlite:///{tmp.mktemp('db') / 'test.db'}" if kind == "sqlite" else postgres_url(worker_id)
        engine = make_engine(url)
        _wipe(engine)
        migrate(engine)
        remember_builtin_taxonomies(engine)
        engines[kind] = engine
    return engines[kind]


@pytest.fixture
def db(engine: Engine) -> Iterator[Engine]:
    """Empty real database; code under test opens its own sessions and commits."""
    yield engine
    empty_tables(engine)


# The built-in taxonomy rows as `migrate` stored them, per database URL: putting them back from this copy
# costs one INSERT, where ensure_builtin parses the YAML files again (about 0.1 s, before every test).
_BUILTIN_TAXONOMIES: dict[str, list[dict[str, Any]]] = {}
_TAXONOMY_COLUMNS = ("namespace", "title", "description", "nodes", "builtin")
TAXONOMY: Table = Taxonomy.__table__  # type: ignore[attr-defined]


def remember_builtin_taxonomies(engine: Engine) -> None:
    """Keep the rows `migrate` just stored, for empty_tables to put back."""
    columns = [TAXONOMY.c[name] for name in _TAXONOMY_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select_columns(*columns).where(TAXONOMY.c.builtin)).mappings().all()
    _BUILTIN_TAXONOMIES[str(engine.url)] = [dict(row) for row in rows]


def empty_tables(engine: Engine) -> None:
    """Delete every row, then put back the built-in taxonomies (data every test expects)."""
    stored = _BUILTIN_TAXONOMIES.get(str(engine.url))
    with engine.begin() as conn:
        tables = reversed(SQLModel.metadata.sorted_tables)
        if engine.dialect.name == "postgresql":  # one round trip instead of one per table (~0.1 s a test)
            quote = engine.dialect.identifier_preparer.format_table
            conn.exec_driver_sql("; ".join(f"DELETE FROM {quote(table)}" for table in tables))
        else:
            for table in tables:
                conn.execute(table.delete())
        if stored:
            now = utcnow()
            conn.execute(insert(TAXONOMY), [row | {"created_at": now} for row in stored])
    if not stored:
        with Session(engine) as session:
            ensure_builtin(session)
            session.commit()


@pytest.fixture(autouse=True)
def documents_stay_current(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used a database: no incident's search document is stale."""
    if "db" not in request.fixturenames:
        yield
        return
    engine = request.getfixturevalue("db")  # set up first, so this check runs before its teardown empties it
    yield
    assert stale_documents(engine) == []


def stale_documents(engine: Engine) -> list[int]:
    """Incidents whose search document's copies (opened_at, severity, status, model, tags) differ from the
    incident and its tags; search filters and facets read only the copies."""
    with Session(engine) as session:
        tags: dict[int, list[str]] = {}
        for tag in session.exec(select(IncidentTag).where(IncidentTag.confidence != "rejected")):
            tags.setdefault(tag.incident_id, []).append(tag.tag)
        documents = {d.incident_id: d for d in session.exec(select(IncidentDocument))}
        stale = []
        for incident in session.exec(select(Incident)):
            document = documents.get(incident.id or 0)
            expected = (incident.opened_at, incident.severity, incident.status, incident.model_id,
                        sorted(tags.get(incident.id or 0, [])))
            if document is None or (document.opened_at, document.severity, document.status, document.model_id,
                                    sorted(document.tags)) != expected:
                stale.append(incident.id or 0)
        return stale


@pytest.fixture
def settings(db: Engine) -> Settings:
    return Settings(database_url=db.url.render_as_string(hide_password=False), api_token=SecretStr(TOKEN),
                    scheduler_enabled=False, min_window_events=50, slack_token=None,
                    public_url="http://watchtower.test", monitor_interval_s=60, window_s=3600,
                    allowed_hosts="testserver")  # TestClient's Host


@pytest.fixture
def app(settings: Settings, db: Engine) -> FastAPI:
    return create_app(settings, engine=db)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


# Every breach acts at once (pause, swap, incident, page; KPIs at SEV2), one incident per model and monitor:
# for tests of the actions themselves rather than of the response policy.
ACT_ON_ANY_BREACH = {"grouping": "model_monitor", "rules": [
    {"name": "kpi", "match": {"kinds": ["kpi", "estimated_kpi"]}, "severity": "SEV2",
     "actions": ["pause_pipeline", "swap_model", "open_incident", "notify"]},
    {"name": "any-breach", "severity": "SEV3", "actions": ["pause_pipeline", "swap_model", "open_incident", "notify"]},
]}


@pytest.fixture
def act_on_any_breach(client: TestClient) -> None:
    """The default policy acts on any breach at once (see ACT_ON_ANY_BREACH)."""
    response = client.put("/policy", json=ACT_ON_ANY_BREACH)
    assert response.status_code == 200, response.text


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture(scope="session")
def models() -> factories.BuiltModels:
    """Real scikit-learn models converted to ONNX, built once per run."""
    return factories.build_models()


def free_port() -> int:
    """A localhost port nothing listens on (the OS picked it for a socket that is closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn server on a free localhost port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


class SlackRecorder:
    """A local stand-in for slack.com/api that records every call; `fail` makes it answer 500.

    `script` holds answers to give first, one per call, as (status, headers, JSON body); `delay_s` makes
    every answer slow, so concurrent senders overlap.
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = False
        self.script: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder._lock:  # the server is threaded; answers are taken from the script in call order
                    call = {"path": self.path, "auth": self.headers.get("Authorization"),
                            "body": json.loads(body or b"{}"), "headers": dict(self.headers)}
                    recorder.calls.append(call)
                    scripted = recorder.script.pop(0) if recorder.script else None
                    answer = recorder.answer(call)
                time.sleep(recorder.delay_s)
                status, reply = (500, {"ok": False, "error": "internal_error"}) if recorder.fail else (200, answer)
                headers: dict[str, str] = {}
                if scripted is not None:
                    status, headers, reply = scripted
                data = json.dumps(reply).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        # close() waits for serve_forever to notice: at its default 0.5 s poll that was up to 0.5 s a test
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        """Slack's answer: each chat.postMessage gets its own ts (the first 1700000000.000100), chat.update
        echoes the message it edited."""
        if call["path"].endswith("/chat.update"):
            return {"ok": True, "channel": call["body"].get("channel"), "ts": call["body"].get("ts")}
        posts = sum(c["path"].endswith("/chat.postMessage") for c in self.calls)
        return {"ok": True, "channel": "C0TEST", "ts": f"1700000000.{99 + max(posts, 1):06d}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack() -> Iterator[SlackRecorder]:
    recorder = SlackRecorder()
    yield recorder
    recorder.close()


@pytest.fixture
def webhook() -> Iterator[SlackRecorder]:
    """Any HTTP receiver that records POSTs: the same recorder, reached at its root."""
    recorder = SlackRecorder()
    yield recorder
    recorder.close()
