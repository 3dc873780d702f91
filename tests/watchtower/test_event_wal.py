"""The event writer's WAL checkpoints (SQLite): none inside its commits, one after about 1000 pages of them."""

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection, Engine

from watchtower.db import writer
from watchtower.events.wal import AUTOCHECKPOINT_PAGES, WalCheckpoints

KEYS = 30_000  # about 1,000 WAL pages of serving_event rows and their two indexes


def store_keys(connection: Connection, first: int, n: int) -> None:
    """n idempotency keys committed on `connection` (ids k<first>...), as the writer's flush commits them."""
    with connection.begin():
        connection.exec_driver_sql(
            "WITH RECURSIVE k(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?) "
            "INSERT INTO serving_event (model_id, event_id, ts, version, received_at) "
            "SELECT 1, 'k' || i, '2026-11-29 03:00:00.000000', NULL, '2026-11-29 03:00:01.000000' FROM k",
            (first, first + n))


def checkpointed_keys(engine: Engine, tmp_path: Path) -> int:
    """How many keys the database file holds without its WAL: what checkpoints copied into it."""
    copy = tmp_path / "without-wal.db"
    shutil.copyfile(str(engine.url.database), copy)
    with sqlite3.connect(copy) as conn:
        return int(conn.execute("SELECT count(*) FROM serving_event").fetchone()[0])


def raw(connection: Connection) -> sqlite3.Connection:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def autocheckpoint(connection: Connection) -> int:
    return int(raw(connection).execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_the_writers_commits_leave_the_wal_and_a_flush_past_the_threshold_has_it_checkpointed(
        db: Engine, tmp_path: Path) -> None:
    checkpoints = WalCheckpoints(writer(db))
    with writer(db).connect() as connection:
        checkpoints.take_over(connection)
        if db.dialect.name != "sqlite":  # PostgreSQL has no WAL of SQLite's kind: nothing to do, no thread
            store_keys_postgres(connection)
            assert not checkpoints.after_flush(KEYS, 1)
            checkpoints.stop()
            return
        assert autocheckpoint(connection) == 0
        raw(connection).execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the schema, copied
        store_keys(connection, 0, KEYS)
        assert checkpointed_keys(db, tmp_path) == 0  # SQLite's own checkpoint would have run in that commit
        # Under the threshold (estimated from the flush's events and models): nothing asked for.
        assert not checkpoints.after_flush(KEYS // 2, 1)
        assert checkpoints.after_flush(KEYS // 2, 1)
        # The count starts again after a checkpoint was asked for.
        store_keys(connection, KEYS, 100)
        assert not checkpoints.after_flush(100, 1)
        checkpoints.stop()  # finishes what was asked for, copying the WAL once more
        assert checkpointed_keys(db, tmp_path) == KEYS + 100
        assert not checkpoints.after_flush(KEYS, 1)  # stopped: no new thread
        checkpoints.hand_back(connection)
        assert autocheckpoint(connection) == AUTOCHECKPOINT_PAGES  # the pool lends it to others next
    assert checkpoints.failures == 0


def test_the_checkpoint_thread_runs_beside_the_writers_transaction(db: Engine, tmp_path: Path) -> None:
    """A checkpoint waits for no writer: asked for while the writer's next transaction is open, it copies what
    was committed before it."""
    if db.dialect.name != "sqlite":
        return
    checkpoints = WalCheckpoints(writer(db))
    with writer(db).connect() as connection:
        checkpoints.take_over(connection)
        raw(connection).execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store_keys(connection, 0, KEYS)
        with connection.begin():
            connection.exec_driver_sql("INSERT INTO serving_event (model_id, event_id, ts, received_at) "
                                       "VALUES (1, 'open', '2026-11-29 03:00:00', '2026-11-29 03:00:00')")
            assert checkpoints.after_flush(KEYS, 1)
            checkpoints.stop()
            assert checkpointed_keys(db, tmp_path) == KEYS
        checkpoints.hand_back(connection)


def store_keys_postgres(connection: Connection) -> None:
    with connection.begin():
        connection.exec_driver_sql(
            "INSERT INTO serving_event (model_id, event_id, ts, version, received_at) "
            "SELECT 1, 'k' || i, now(), NULL, now() FROM generate_series(1, 100) AS i")


def test_a_failed_checkpoint_is_counted_and_the_thread_goes_on(tmp_path: Path) -> None:
    """A database the checkpoint cannot open (its directory gone): logged and counted, never raised into the
    writer, and the next flushes ask again."""
    from watchtower.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'events.db'}")
    checkpoints = WalCheckpoints(engine)
    for failed in (1, 2):
        assert checkpoints.after_flush(KEYS, 1)
        for _ in range(1000):  # bounded: a dead thread fails the test instead of hanging it
            if checkpoints.failures >= failed:
                break
            threading.Event().wait(0.01)
        assert checkpoints.failures == failed
    checkpoints.stop()
    assert checkpoints.failures == 3  # the stop's own, and the thread ended
    engine.dispose()


def test_without_a_thread_the_writer_checkpoints_itself(db: Engine, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The event writer's thread must never die: when no thread can be started (the process at its limit), the
    checkpoint runs in the caller, and a later flush tries the thread again."""
    if db.dialect.name != "sqlite":
        return
    checkpoints = WalCheckpoints(writer(db))

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with writer(db).connect() as connection:
        checkpoints.take_over(connection)
        raw(connection).execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store_keys(connection, 0, KEYS)
        with monkeypatch.context() as patch:
            patch.setattr(threading.Thread, "start", refuse)
            assert checkpoints.after_flush(KEYS, 1)
        assert checkpointed_keys(db, tmp_path) == KEYS  # done before after_flush returned
        store_keys(connection, KEYS, 100)
        assert checkpoints.after_flush(KEYS, 1)  # a thread this time
        checkpoints.stop()
        assert checkpointed_keys(db, tmp_path) == KEYS + 100
        checkpoints.hand_back(connection)
    assert checkpoints.failures == 0
