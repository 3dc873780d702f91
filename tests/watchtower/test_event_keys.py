"""Idempotency keys on both databases: the one-statement path for a few keys (a flush of a few predictions) and
the whole-column paths for a batch store the same rows and say the same ids were new."""

from datetime import timedelta

import pyarrow as pa
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from detectors.base import ID, TS
from tests.watchtower.segstore_helpers import T0, add_model
from watchtower.db import writer
from watchtower.events.frames import RECEIVED_AT, TS_TYPE, VERSION
from watchtower.events.keys import SMALL_KEYS, insert_keys


def _keys(ids: list[str], version: str | None = "v1", first: int = 0) -> pa.Table:
    """Keys whose times follow from their place in the whole run (`first`: the place of ids[0])."""
    at = range(first, first + len(ids))
    return pa.table({ID: pa.array(ids, pa.string()),
                     TS: pa.array([T0 + timedelta(seconds=i, microseconds=7) for i in at], TS_TYPE),
                     VERSION: pa.array([version] * len(ids), pa.string()),
                     RECEIVED_AT: pa.array([T0 + timedelta(hours=1, microseconds=i) for i in at], TS_TYPE)})


def _insert(db: Engine, model_id: int, keys: pa.Table) -> list[str]:
    with Session(writer(db)) as session:
        stored = insert_keys(session, model_id, keys, db.dialect.name == "postgresql")
        session.commit()
    return stored


def _stored(db: Engine, model_id: int) -> list[tuple[object, ...]]:
    with Session(db) as session:  # as the database holds them (SQLite: the text of its DATETIME columns)
        return [tuple(row) for row in session.execute(text(
            "SELECT event_id, ts, version, received_at FROM serving_event WHERE model_id = :m ORDER BY event_id"),
            {"m": model_id}).all()]


@pytest.mark.parametrize("version", ["v1", None])
def test_few_keys_and_a_batch_store_the_same_rows_and_tell_the_same_new_ids(db: Engine, version: str | None) -> None:
    few, batch = add_model(db, "few"), add_model(db, "batch")
    n = SMALL_KEYS + 40  # written by the few-keys path in two steps, by the batch path in one
    ids = [f"k{i:03d}" for i in range(n)]
    assert sorted(_insert(db, few, _keys(ids[:SMALL_KEYS], version))) == ids[:SMALL_KEYS]
    assert sorted(_insert(db, few, _keys(ids[SMALL_KEYS:], version, SMALL_KEYS))) == ids[SMALL_KEYS:]
    assert sorted(_insert(db, batch, _keys(ids, version))) == ids
    stored = _stored(db, few)
    assert len(stored) == n and [row[1:] for row in stored] == [row[1:] for row in _stored(db, batch)]
    # Resent, some of them with new ones: each path says exactly which were new, and keeps the first rows.
    resent = ids[-5:] + ["new-1", "new-2"]
    assert sorted(_insert(db, few, _keys(resent, "v2"))) == ["new-1", "new-2"]
    assert sorted(_insert(db, batch, _keys(ids[:SMALL_KEYS + 1] + ["new-1", "new-2"], "v2"))) == ["new-1", "new-2"]
    assert _stored(db, few)[:n] == stored


@pytest.mark.parametrize("shared", [True, False])
def test_a_batch_stores_every_key_as_the_few_keys_path_does(db: Engine, shared: bool) -> None:
    """A batch whose rows share one version and arrival (an API batch; SQLite packs it into one JSON array) or do
    not (a flush of several requests), with ids JSON must escape: stored as the few-keys path stores them."""
    model = add_model(db, "batch")
    n = 700
    ids = [f"k{i:04d}" for i in range(n - 3)] + ['quote"d', "back\\slash", "ünïcode 名前"]
    keys = _keys(ids, None if shared else "v1")
    if shared:
        keys = keys.set_column(3, RECEIVED_AT, pa.array([T0 + timedelta(hours=1)] * n, TS_TYPE))
    else:  # a flush of several requests: versions differ from row to row
        keys = keys.set_column(2, VERSION, pa.array([f"v{i % 3}" if i % 5 else None for i in range(n)], pa.string()))
    assert sorted(_insert(db, model, keys)) == sorted(ids)
    stored = {row[0]: row[1:] for row in _stored(db, model)}
    few = add_model(db, "few")
    for start in range(0, n, SMALL_KEYS):  # the few-keys path (one INSERT ... RETURNING each) as the reference
        assert len(_insert(db, few, keys.slice(start, SMALL_KEYS))) == min(SMALL_KEYS, n - start)
    assert stored == {row[0]: row[1:] for row in _stored(db, few)}
    # Resent with one new id: nothing of the resend is kept but the new row.
    resend = pa.concat_tables([keys.slice(0, 300), _keys(["fresh"], "v9", n)])
    assert _insert(db, model, resend) == ["fresh"]
    assert len(_stored(db, model)) == n + 1
