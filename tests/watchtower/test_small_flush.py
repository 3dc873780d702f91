"""The small flush (a few predictions, plain statements on the driver's connection) stores exactly what the
Session path stores for the same requests: keys, segment, audit rows and counts."""

from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tests.watchtower.test_segment_profiles import add_model
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.events.flush import Pending, write_batch, write_through_session
from watchtower.events.scored import Scored
from watchtower.events.segstore.stores import read_inline
from watchtower.events.small_flush import ROWS, fits
from watchtower.registry.models import MonitoredModel


def scored(ids: list[str], seconds: float, version: str = "primary-v1") -> Scored:
    """One request's predictions over add_model's features (x0-x2 numeric, color categorical)."""
    n = len(ids)
    rng = np.random.default_rng(len(ids[0]) + n)
    features = {f"x{i}": rng.normal(size=n) for i in range(3)}
    features["x1"][0] = np.nan  # a missing number
    features["color"] = np.array(["red", None, "blue"][:n] + ["red"] * max(0, n - 3), dtype=object)
    proba = rng.random((n, 2))
    return Scored(ids, features, [int(p > 0.5) for p in proba[:, 1]], ("0", "1"), proba, 0.25, version,
                  utcnow() + timedelta(seconds=seconds))


AT = utcnow()


def audit(path: str) -> dict[str, Any]:
    return {"at": AT, "actor": "token:3:ci", "user_id": None, "token_id": 3, "method": "POST",
            "route": "/models/{name}/predict", "path": path, "params": {"name": "x", "events": 2}, "status": 200,
            "client": "10.0.0.7"}


def batch(model: MonitoredModel, parts: list[Scored]) -> list[Pending]:
    return [Pending(model, part, True, audit(f"/models/{model.name}/predict") if i % 2 == 0 else None)
            for i, part in enumerate(parts)]


def stored(db: Engine, model: MonitoredModel) -> dict[str, Any]:
    """Everything the flushes wrote for a model, without ids that differ between two models by design."""
    with Session(db) as session:
        keys = session.execute(text("SELECT event_id, ts, version, received_at FROM serving_event WHERE model_id = "
                                    ":m ORDER BY event_id"), {"m": model.id}).all()
        segments = session.execute(text("SELECT min_ts, max_ts, n_rows, n_bytes, path, parquet FROM event_segment "
                                        "WHERE model_id = :m ORDER BY id"), {"m": model.id}).all()
        audits = session.execute(text("SELECT at, actor, user_id, token_id, method, route, params, status, client "
                                      "FROM audit_log WHERE path = :p ORDER BY id"),
                                 {"p": f"/models/{model.name}/predict"}).all()
    return {"keys": [tuple(k) for k in keys], "audit": [tuple(a) for a in audits],
            "segments": [(*s[:5], read_inline(bytes(s[5])), bytes(s[5])) for s in segments]}


def test_the_small_flush_stores_what_the_session_path_stores(db: Engine) -> None:
    small, general = add_model(db, "small"), add_model(db, "general")
    before = [scored(["old"], 0)]
    # ids repeated within the batch (the first wins) and one stored by an earlier flush
    parts = [scored(["a", "b", "c"], 1), scored(["b", "d"], 2), scored(["old"], 3), scored(["e"], 4, "fallback-v2")]
    assert fits(batch(small, parts))
    with writer(db).connect() as connection:
        write_batch(connection, batch(small, before))
        write_through_session(connection, batch(general, before))
        small_counts, small_written = write_batch(connection, batch(small, parts))
        general_counts, general_written = write_through_session(connection, batch(general, parts))
    assert small_counts == general_counts == [3, 1, 0, 1]
    got, want = stored(db, small), stored(db, general)
    assert [k[0] for k in got["keys"]] == ["a", "b", "c", "d", "e", "old"]
    assert got["keys"] == want["keys"]
    assert got["audit"] == want["audit"] and len(got["audit"]) == 3
    assert [s[:5] for s in got["segments"]] == [s[:5] for s in want["segments"]]
    for (*_, table, raw), (*_, expected, expected_raw) in zip(got["segments"], want["segments"], strict=True):
        assert table.equals(expected) and raw == expected_raw  # byte for byte the same inline segment
    segment = got["segments"][1][5]
    assert segment.column("__id__").to_pylist() == ["a", "b", "c", "d", "e"]
    assert segment.column("x1").to_pylist()[0] is None and segment.column("x1").null_count == 2
    assert segment.column("color").to_pylist()[:2] == ["red", None]
    assert [(t.num_rows, t.schema) for _, _, t in small_written] == [(t.num_rows, t.schema)
                                                                      for _, _, t in general_written]


def test_only_a_few_predictions_take_the_small_path(db: Engine) -> None:
    model = add_model(db, "few")
    assert fits(batch(model, [scored([f"p{i}"], i) for i in range(ROWS)]))
    assert not fits(batch(model, [scored([f"p{i}"], i) for i in range(ROWS + 1)]))
    rows = [{"event_id": "r1", "ts": utcnow(), "features": {"f1": 1.0}}]
    assert not fits([*batch(model, [scored(["s1"], 0)]), Pending(model, rows, True)])  # an events API batch
    table = pa.table({"__id__": ["t1"]})
    assert not fits([Pending(model, table, True)])
