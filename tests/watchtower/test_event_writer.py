"""The event writer: group commit, durable and async modes, back-pressure, idempotency, flush failures, shutdown.

Timing is made deterministic by holding the database's write lock (SQLite) or a lock on serving_event
(PostgreSQL) while requests gather in the buffer, and by watching the buffer gauge rather than the clock.
"""

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from tests import factories
from tests.conftest import TOKEN
from tests.factories import BuiltModels
from watchtower.app import create_app
from watchtower.auth.models import AuditEntry
from watchtower.db import writer
from watchtower.events.models import EventSegment, ServingEvent
from watchtower.events.writer import WRITER_CACHE_KIB
from watchtower.runtime import Runtime
from watchtower.settings import Settings

ROW = {"f1": 0.3, "f2": -0.1, "f3": 0.0, "f4": 1.0}


@contextmanager
def app_client(settings: Settings, db: Engine, **changes: Any) -> Iterator[tuple[TestClient, Runtime]]:
    """A started app (its lifespan runs the writer) with some settings changed."""
    app = create_app(settings.model_copy(update=changes), engine=db)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client, app.state.runtime


@contextmanager
def writes_held(db: Engine) -> Iterator[None]:
    """Block every insert into serving_event until the block ends (the writer's flush waits on it)."""
    with writer(db).connect() as conn, conn.begin() as transaction:  # SQLite: BEGIN IMMEDIATE takes the lock
        if db.dialect.name == "postgresql":
            conn.execute(text("LOCK TABLE serving_event IN SHARE MODE"))
        try:
            yield
        finally:
            transaction.rollback()


def wait_for(predicate: Any, what: str) -> None:
    """Poll until predicate() holds (bounded: a broken writer fails the test instead of hanging it)."""
    event = threading.Event()
    for _ in range(2000):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError(f"never happened: {what}")


def buffered(runtime: Runtime) -> float:
    return runtime.metrics.registry.get_sample_value("watchtower_event_buffer_events") or 0.0


def waiting(runtime: Runtime) -> float:
    return runtime.metrics.registry.get_sample_value("watchtower_event_buffer_waiting_requests") or 0.0


def flushes(runtime: Runtime, outcome: str) -> float:
    return runtime.metrics.registry.get_sample_value("watchtower_event_flushes_total", {"outcome": outcome}) or 0.0


def counts(db: Engine) -> tuple[int, int]:
    """(events, segments) stored."""
    with Session(db) as session:
        return (session.exec(select(func.count()).select_from(ServingEvent)).one(),
                session.exec(select(func.count()).select_from(EventSegment)).one())


def predict(client: TestClient, event_id: str) -> Any:
    return client.post("/models/churn/predict", json={"instances": [ROW], "ids": [event_id]})


def test_concurrent_durable_predictions_share_one_commit(db: Engine, settings: Settings, models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="durable") as (client, runtime):
        factories.register_tensor(client, models)
        with ThreadPoolExecutor(8) as pool, writes_held(db):
            first = pool.submit(predict, client, "e0")  # its flush waits on the held lock...
            wait_for(lambda: buffered(runtime) == 1, "the first request buffered")
            rest = [pool.submit(predict, client, f"e{i}") for i in range(1, 8)]  # ...while these gather
            wait_for(lambda: buffered(runtime) == 8, "all requests buffered")
            assert not any(f.done() for f in [first, *rest])  # durable: nobody answered before its commit
        assert {f.result().status_code for f in [first, *rest]} == {200}
        assert counts(db) == (8, 2)  # two flushes: the first request alone, then the seven that gathered
        assert flushes(runtime, "ok") == 2 and buffered(runtime) == 0


def test_a_durable_answer_means_stored(db: Engine, settings: Settings, models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="durable", log_flush_ms=10_000) as (client, _):
        factories.register_tensor(client, models)
        for i in range(3):
            assert predict(client, f"e{i}").status_code == 200
            assert counts(db) == (i + 1, i + 1)  # read right after the answer: no flush interval waited for


def test_async_answers_before_the_flush_and_shutdown_flushes(db: Engine, settings: Settings,
                                                             models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="async", log_flush_ms=10_000, log_flush_events=1000) as (client, runtime):
        factories.register_tensor(client, models)
        for i in range(5):
            assert predict(client, f"e{i}").status_code == 200
        assert counts(db) == (0, 0) and buffered(runtime) == 5  # answered; still in the buffer
    assert counts(db) == (5, 1)  # the lifespan's shutdown flushed them, as one segment


def test_a_model_can_log_async_while_the_default_is_durable(db: Engine, settings: Settings,
                                                            models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="durable", log_flush_ms=10_000, log_flush_events=1000) as (client, _):
        factories.register_tensor(client, models)
        patched = client.patch("/models/churn", json={"log_mode": "async"})
        assert patched.status_code == 200 and patched.json()["log_mode"] == "async"
        assert predict(client, "a").status_code == 200
        assert counts(db) == (0, 0)
        back = client.patch("/models/churn", json={"log_mode": None})
        assert back.status_code == 200 and back.json()["log_mode"] is None
        assert predict(client, "b").status_code == 200
        assert counts(db) == (2, 1)  # durable again: its flush took the async event along
        bad = client.patch("/models/churn", json={"log_mode": "sometimes"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.log_mode"


def test_a_full_buffer_makes_requests_wait_and_drops_nothing(db: Engine, settings: Settings,
                                                             models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="async", log_buffer_events=4, log_flush_ms=1) as (client, runtime):
        factories.register_tensor(client, models)
        with ThreadPoolExecutor(2) as pool:
            with writes_held(db):
                for i in range(4):  # the buffer fills: the first is in a flush waiting on the lock
                    assert predict(client, f"e{i}").status_code == 200
                wait_for(lambda: buffered(runtime) == 4, "a full buffer")
                blocked: Future[Any] = pool.submit(predict, client, "e4")
                wait_for(lambda: waiting(runtime) == 1, "the fifth request waiting for room")
                assert buffered(runtime) == 4 and not blocked.done()
            assert blocked.result().status_code == 200
        wait_for(lambda: counts(db)[0] == 5, "every event stored")


def test_resent_ids_across_requests_of_one_flush_are_counted_once(db: Engine, settings: Settings,
                                                                   models: BuiltModels) -> None:
    def send(ids: list[str]) -> Any:
        events = [{"id": i, "features": {"f1": 1.0, "f2": 2.0, "f3": 3.0, "f4": 4.0}} for i in ids]
        return client.post("/models/churn/events", json={"events": events})

    with app_client(settings, db) as (client, runtime):
        factories.register_tensor(client, models)
        with ThreadPoolExecutor(3) as pool:
            with writes_held(db):
                blocker = pool.submit(send, ["x"])
                wait_for(lambda: buffered(runtime) == 1, "the first batch in its flush")
                first = pool.submit(send, ["a", "b", "a"])
                wait_for(lambda: buffered(runtime) == 4, "the second batch buffered")
                second = pool.submit(send, ["b", "c"])
                wait_for(lambda: buffered(runtime) == 6, "the third batch buffered")
            assert blocker.result().json() == {"accepted": 1, "duplicates": 0}
            assert first.result().json() == {"accepted": 2, "duplicates": 1}
            assert second.result().json() == {"accepted": 1, "duplicates": 1}  # b: the earlier request's
        assert counts(db) == (4, 2)
        assert send(["a", "c", "d"]).json() == {"accepted": 1, "duplicates": 2}


@contextmanager
def segments_table_away(db: Engine) -> Iterator[None]:
    """Make every flush fail (its segment has no table) until the block ends."""
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE event_segment RENAME TO event_segment_away"))
    try:
        yield
    finally:
        with db.begin() as conn:
            conn.execute(text("ALTER TABLE event_segment_away RENAME TO event_segment"))


def test_a_durable_predict_not_stored_in_time_is_a_503_and_its_flush_still_completes(
        db: Engine, settings: Settings, models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="durable", log_wait_s=0.5) as (client, runtime):
        factories.register_tensor(client, models)
        assert predict(client, "warm").status_code == 200
        with writes_held(db):  # the flush waits on the lock past the request's wait
            late = predict(client, "late")
            assert late.status_code == 503, late.text
            assert late.headers["content-type"] == "application/problem+json"
            assert "not stored within 0.5 s" in late.json()["detail"]
        # The request gave up, not its flush: the writer still resolves the (shielded, never cancelled) future,
        # stored or failed as the database decided, and goes on.
        wait_for(lambda: buffered(runtime) == 0, "the late request's flush done")
        assert predict(client, "after").status_code == 200
        with Session(db) as session:
            assert "after" in session.exec(select(ServingEvent.event_id)).all()


def test_a_failed_flush_is_a_503_for_durable_and_retried_for_async(db: Engine, settings: Settings,
                                                                  models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="durable") as (client, runtime):
        factories.register_tensor(client, models)
        assert client.patch("/models/churn", json={"log_mode": "async"}).status_code == 200
        assert predict(client, "warm").status_code == 200  # the model is in the serving directory
        wait_for(lambda: counts(db) == (1, 1), "the first event stored")
        with segments_table_away(db):
            assert predict(client, "async-1").status_code == 200  # buffered; its flushes fail and are retried
            wait_for(lambda: flushes(runtime, "error") >= 1, "a failed flush")
            events = [{"id": "durable-1", "features": {"f1": 1.0, "f2": 2.0, "f3": 3.0, "f4": 4.0}}]
            refused = client.post("/models/churn/events", json={"events": events})
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json" and "retry-after" in refused.headers
            with Session(db) as session:  # nothing half-written: no event row without its segment
                assert session.exec(select(func.count()).select_from(ServingEvent)).one() == 1
            assert buffered(runtime) == 1  # the async event is still held, the durable one let go
        wait_for(lambda: counts(db) == (2, 2), "the async event stored by a retry")
        resent = client.post("/models/churn/events", json={"events": events})
        assert resent.json() == {"accepted": 1, "duplicates": 0}
    assert flushes(runtime, "error") >= 2 and counts(db) == (3, 3)


def test_a_lost_writer_connection_is_replaced_without_a_503(db: Engine, settings: Settings,
                                                           models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="durable") as (client, runtime):
        factories.register_tensor(client, models)
        assert predict(client, "e0").status_code == 200
        held = runtime.writer._connection  # the writer keeps its connection between flushes...
        assert held is not None and not held.closed
        raw: Any = held.connection.dbapi_connection
        if db.dialect.name == "sqlite":
            assert raw.execute("PRAGMA cache_size").fetchone() == (-WRITER_CACHE_KIB,)
        if db.dialect.name == "postgresql":  # ...which the server ends (a restart, an idle timeout)
            with db.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": raw.info.backend_pid})
        else:  # SQLite has no server: the file handle goes instead
            raw.close()
        assert predict(client, "e1").status_code == 200  # flushed again on a new connection, not a 503
        assert runtime.writer._connection is not held and counts(db) == (2, 2)
        assert flushes(runtime, "error") == 0 and flushes(runtime, "ok") == 2
        if db.dialect.name == "sqlite":  # the new connection has the writer's own page cache, as the first had
            replaced: Any = runtime.writer._connection.connection.driver_connection
            assert replaced.execute("PRAGMA cache_size").fetchone() == (-WRITER_CACHE_KIB,)
            with db.connect() as other:  # others keep SQLite's default
                assert other.exec_driver_sql("PRAGMA cache_size").one() == (-2000,)


@pytest.mark.parametrize("mode", ["durable", "async"])
def test_a_swap_committed_here_is_served_at_once(db: Engine, settings: Settings, models: BuiltModels,
                                                 mode: str) -> None:
    with app_client(settings, db, log_mode=mode, serving_refresh_s=3600) as (client, runtime):
        factories.register_tensor(client, models)
        assert predict(client, "a").json()["role"] == "primary"
        from watchtower.registry.models import MonitoredModel

        # As the monitor's swap action does: another session, through writer() (on SQLite BEGIN IMMEDIATE waits
        # for the event writer's flush; a plain read transaction upgraded to write would fail "database is locked").
        with Session(writer(db)) as session:
            model = session.exec(select(MonitoredModel)).one()
            model.active_role = "fallback"
            session.add(model)
            session.commit()
        assert predict(client, "b").json()["role"] == "fallback"


def test_a_swap_committed_elsewhere_is_served_after_the_refresh_interval(db: Engine, settings: Settings,
                                                                         models: BuiltModels) -> None:
    def swap_from_another_process(role: str) -> None:  # a Core UPDATE: no ORM session of this process sees it
        with db.begin() as conn:
            conn.execute(text("UPDATE monitored_model SET active_role = :role"), {"role": role})

    with app_client(settings, db, serving_refresh_s=3600) as (client, _):
        factories.register_tensor(client, models)
        assert predict(client, "a").json()["role"] == "primary"
        swap_from_another_process("fallback")
        assert predict(client, "b").json()["role"] == "primary"  # cached until the refresh interval ends
    with app_client(settings, db, serving_refresh_s=0) as (client, _):  # 0: re-read on every request
        assert predict(client, "c").json()["role"] == "fallback"
        swap_from_another_process("primary")
        assert predict(client, "d").json()["role"] == "primary"


def audit_rows(db: Engine) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(actor, route, status, params) of the audit log, oldest first."""
    with Session(db) as session:
        return [(e.actor, e.route, e.status, e.params)
                for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()]


def test_accepted_writes_are_audited_in_the_flush_that_stores_them(db: Engine, settings: Settings,
                                                                   models: BuiltModels) -> None:
    with app_client(settings, db, log_mode="durable", log_flush_ms=10_000, log_flush_events=1000) as (client, _):
        factories.register_tensor(client, models)
        before = len(audit_rows(db))
        assert predict(client, "d-1").status_code == 200
        # Durable: the entry is there when the answer is (committed with the event), naming the batch's size.
        assert audit_rows(db)[before:] == [("api-token", "/models/{name}/predict", 200, {"name": "churn", "events": 1})]
        events = [{"id": f"e-{i}", "features": ROW} for i in range(3)]
        assert client.post("/models/churn/events", json={"events": events}).status_code == 200
        assert audit_rows(db)[-1] == ("api-token", "/models/{name}/events", 200, {"name": "churn", "events": 3})
        assert client.patch("/models/churn", json={"log_mode": "async"}).status_code == 200
        with writes_held(db):
            assert predict(client, "a-1").status_code == 200  # answered; its event and entry wait in the buffer
            assert audit_rows(db)[-1][1] == "/models/{name}"  # the PATCH's entry, the predict's not yet
        wait_for(lambda: audit_rows(db)[-1][1] == "/models/{name}/predict", "the async flush")
        assert audit_rows(db)[-1] == ("api-token", "/models/{name}/predict", 200, {"name": "churn", "events": 1})
        with segments_table_away(db):  # a durable write that is not stored is audited as the 503 it got
            assert client.post("/models/churn/events", json={"events": [{"id": "x", "features": ROW}]}
                               ).status_code == 503
        assert audit_rows(db)[-1] == ("api-token", "/models/{name}/events", 503, {"name": "churn"})
    assert counts(db)[0] == 5
