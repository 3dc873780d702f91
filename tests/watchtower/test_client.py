"""watchtower.client against a real `watchtower serve` (SQLite and PostgreSQL), with real faults: a restarted
server, a proxy answering 503 or holding requests, a process that exits without closing its client."""

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests import factories
from tests.conftest import TOKEN
from tests.factories import BuiltModels
from tests.processes import ROOT, Server, database_url, start_serve
from tests.watchtower.fault_proxy import FaultProxy
from watchtower.client import Client, ClientClosed, ClientConfigError
from watchtower.events.models import FeatureLog, Label, ServingEvent

FEATURES = {"f1": 0.1, "f2": -0.4, "f3": 1.2, "f4": 0.0}


def _stored(db: Engine) -> tuple[set[str], set[str], set[str]]:
    """Event ids, labelled ids and logged entity ids in the database."""
    with Session(db) as session:
        return (set(session.exec(select(ServingEvent.event_id)).all()), set(session.exec(select(Label.event_id)).all()),
                set(session.exec(select(FeatureLog.entity_id)).all()))


def _wait(what: str, predicate: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def server(client: TestClient, models: BuiltModels, db: Engine, tmp_path: Path) -> Iterator[Server]:
    """A real `watchtower serve` on the test database, with the tensor model "churn" registered."""
    factories.register_tensor(client, models)
    server = start_serve(database_url(db), tmp_path / "serve.log")
    yield server
    server.stop()


@pytest.fixture
def proxy(server: Server) -> Iterator[FaultProxy]:
    proxy = FaultProxy(server.base)
    yield proxy
    proxy.close()


def test_rows_are_batched_and_labels_follow_their_events(proxy: FaultProxy, db: Engine) -> None:
    with Client(proxy.base, TOKEN, model="churn", batch_size=40, flush_interval_s=60) as watch:
        ids = []
        for i in range(100):  # each label right after its event: they share batches
            ids.append(watch.log_prediction(FEATURES | {"f1": float(i)}, prediction=1, latency_ms=2.5))
            watch.log_label(ids[-1], i % 2)
            if i % 5 == 0:
                watch.log_stage_features("training", ids[-1], FEATURES)
        assert watch.flush(timeout_s=120)
        stats = watch.stats()
    assert (stats.logged, stats.sent, stats.rejected, stats.failed, stats.pending) == (220, 220, 0, 0, 0)
    events, labels, logged = _stored(db)
    assert events == labels == set(ids) and logged == set(ids[::5])
    assert len(proxy.seen) <= 3 * 6 and all(s.status == 200 for s in proxy.seen)  # 6 batches of <= 40 rows
    assert sum(s.rows for s in proxy.seen) == 220
    first = [s.path.rsplit("/", 1)[-1] for s in proxy.seen[:3]]
    assert first == ["events", "features", "labels"]  # events go first within a batch


def test_the_interval_sends_a_partial_batch(server: Server, db: Engine) -> None:
    watch = Client(server.base, TOKEN, model="churn", batch_size=1000, flush_interval_s=0.2)
    try:
        ids = {watch.log_prediction(FEATURES) for _ in range(5)}
        _wait("the interval's flush", lambda: _stored(db)[0] == ids)  # no flush() call
    finally:
        watch.close()


def test_rows_survive_a_server_restart(server: Server, db: Engine, tmp_path: Path) -> None:
    port = int(server.base.rsplit(":", 1)[1])
    watch = Client(server.base, TOKEN, model="churn", batch_size=10, flush_interval_s=0.05, max_backoff_s=0.5)
    try:
        ids = [watch.log_prediction(FEATURES) for _ in range(10)]
        assert watch.flush(timeout_s=60)
        server.kill()  # kill -9: connections refused from now on
        ids += [watch.log_prediction(FEATURES) for _ in range(25)]
        _wait("a retry", lambda: watch.stats().retries >= 2)
        restarted = start_serve(database_url(db), tmp_path / "restarted.log", port=port)
        try:
            assert watch.flush(timeout_s=120)
        finally:
            restarted.stop()
        stats = watch.stats()
    finally:
        watch.close()
    assert _stored(db)[0] == set(ids)
    assert (stats.sent, stats.failed, stats.rejected) == (35, 0, 0) and stats.retries >= 2


def test_5xx_is_retried_after_retry_after(proxy: FaultProxy, db: Engine) -> None:
    proxy.fail_next(2, 503, {"Retry-After": "1"})
    with Client(proxy.base, TOKEN, model="churn", batch_size=20, flush_interval_s=60) as watch:
        ids = {watch.log_prediction(FEATURES) for _ in range(20)}
        assert watch.flush(timeout_s=60)
        stats = watch.stats()
    assert [s.status for s in proxy.seen] == [503, 503, 200] and {s.rows for s in proxy.seen} == {20}
    gaps = [b.at - a.at for a, b in zip(proxy.seen, proxy.seen[1:], strict=False)]
    assert min(gaps) >= 0.9  # the client waited as told (the proxy's clock, not the client's)
    assert (stats.retries, stats.sent, stats.failed) == (2, 20, 0) and _stored(db)[0] == ids


def test_4xx_is_not_retried_and_its_problem_is_kept(proxy: FaultProxy, db: Engine) -> None:
    with Client(proxy.base, TOKEN, model="churn", batch_size=100, flush_interval_s=60) as watch:
        watch.log_prediction(FEATURES, model="no-such-model")
        good = [watch.log_prediction(FEATURES) for _ in range(3)]
        bad = watch.log_prediction({"f1": 1.0})  # f2..f4 missing: the server names the row
        watch.log_label("never-served", 1)
        watch.log_label(good[0], 1)
        assert watch.flush(timeout_s=60)
        stats = watch.stats()
    assert proxy.paths(404) == ["/models/no-such-model/events"]  # once: a 404 is not retried
    assert len(proxy.paths(422)) == 2  # the bad event and the unknown label, each refused once
    assert (stats.sent, stats.rejected, stats.retries) == (4, 3, 0)
    events, labels, _ = _stored(db)
    assert events == set(good) and bad not in events and labels == {good[0]}
    assert stats.last_problem is not None and stats.last_problem["status"] == 422
    assert stats.last_problem["errors"][0]["field"] == "body.labels.0.id"


def test_a_full_buffer_drops_and_counts(proxy: FaultProxy, db: Engine) -> None:
    watch = Client(proxy.base, TOKEN, model="churn", batch_size=5, max_buffer=10, on_full="drop",
                   flush_interval_s=0.05)
    try:
        proxy.hold()
        first = [watch.log_prediction(FEATURES) for _ in range(5)]
        assert proxy.held.wait(60)  # the sender is stuck on these five
        more = [watch.log_prediction(FEATURES) for _ in range(30)]  # 10 fit in the buffer, 20 are dropped
        assert watch.stats().dropped == 20
        proxy.release()
        assert watch.flush(timeout_s=60)
        stats = watch.stats()
    finally:
        watch.close()
    assert (stats.logged, stats.sent, stats.dropped) == (15, 15, 20)
    assert _stored(db)[0] == set(first + more[:10])


def test_a_full_buffer_blocks_the_caller_until_there_is_room(proxy: FaultProxy, db: Engine) -> None:
    watch = Client(proxy.base, TOKEN, model="churn", batch_size=5, max_buffer=10, on_full="block",
                   flush_interval_s=0.05)
    ids: list[str] = []
    try:
        proxy.hold()
        ids += [watch.log_prediction(FEATURES) for _ in range(5)]
        assert proxy.held.wait(60)
        caller = threading.Thread(target=lambda: ids.extend(watch.log_prediction(FEATURES) for _ in range(30)))
        caller.start()
        _wait("a full buffer", lambda: watch.stats().logged == 15)
        caller.join(0.5)
        assert caller.is_alive() and watch.stats().logged == 15  # blocked, nothing dropped
        proxy.release()
        caller.join(60)
        assert not caller.is_alive() and watch.flush(timeout_s=60)
        stats = watch.stats()
    finally:
        watch.close()
    assert (stats.logged, stats.sent, stats.dropped) == (35, 35, 0) and _stored(db)[0] == set(ids)
    with pytest.raises(ClientClosed):
        watch.log_prediction(FEATURES)


def test_rows_are_flushed_when_the_process_exits(server: Server, db: Engine) -> None:
    script = ("import sys; from watchtower.client import Client\n"
              f"c = Client({server.base!r}, {TOKEN!r}, model='churn', flush_interval_s=600)\n"
              "ids = [c.log_prediction({'f1': 1.0, 'f2': 2.0, 'f3': 3.0, 'f4': 4.0}) for _ in range(30)]\n"
              "c.log_label(ids[0], 1)\n"
              "print(' '.join(ids))\n")  # and exit, without close(): atexit sends the rows
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}, timeout=120).stdout
    ids = set(out.split())
    events, labels, _ = _stored(db)
    assert len(ids) == 30 and events == ids and len(labels) == 1


def test_the_client_imports_nothing_heavy() -> None:
    code = ("import sys, watchtower.client; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pandas', 'numpy', 'pyarrow', 'fastapi', 'starlette', 'sqlalchemy', 'sqlmodel', 'pydantic'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


def test_settings_come_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHTOWER_CLIENT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WATCHTOWER_CLIENT_BATCH_SIZE", "7")
    monkeypatch.setenv("WATCHTOWER_CLIENT_ON_FULL", "drop")
    with Client(model="m", batch_size=None, flush_interval_s=2) as watch:
        assert (watch.config.url, watch.config.batch_size, watch.config.on_full) == ("http://127.0.0.1:9", 7, "drop")
        assert watch.config.flush_interval_s == 2
    monkeypatch.setenv("WATCHTOWER_CLIENT_BATCH_SIZE", "20000")
    with pytest.raises(ClientConfigError, match="WATCHTOWER_CLIENT_BATCH_SIZE"):
        Client(model="m")
    with pytest.raises(ClientConfigError, match="WATCHTOWER_CLIENT_ON_FULL"):
        Client(model="m", batch_size=10, on_full="wait")  # type: ignore[arg-type]
