"""The event writer's flush of a few predictions: what write_batch stores (the keys, one inline segment per model,
the audit rows, one commit), written with plain statements on the driver's own connection.

Durable predict at low concurrency flushes one or a few requests at a time, and there the route to the database
was the cost: a 1-row flush spent 2 ms of CPU, of which the Session's transaction bookkeeping, SQLAlchemy's
statement execution and Arrow's per-column work on the idempotency keys took about 1.4 ms. Here the keys come from
the requests' own lists, the segment is the same Arrow table (built by scored_table, placed by placed_values), and
each table gets one INSERT.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy.engine import Connection

from watchtower.auth.audit import insert_driver_rows
from watchtower.driver_rows import time_text
from watchtower.events.flush import Pending, Written, accepted
from watchtower.events.keys import insert_key_rows
from watchtower.events.scored import Scored
from watchtower.events.segstore.stores import INLINE_ROWS

# Flushes of at most this many predictions take this path: their segment is small enough to live in its manifest
# row (INLINE_ROWS). Up to there it costs less than the general one (bench/flush_bench.py, CPU per flush of 80 and
# 99 one-row requests: 2.2 and 2.6 ms against 3.7 and 3.6 on PostgreSQL, 3.5 and 4.3 against 4.9 and 5.4 on
# SQLite), and an async flush at one busy client (50 ms of predictions) holds about 80.
ROWS = INLINE_ROWS - 1

_SEGMENT_COLUMNS = ("model_id", "min_ts", "max_ts", "n_rows", "n_bytes", "path", "parquet", "created_at")


def fits(batch: Sequence[Pending]) -> bool:
    """Whether this path stores the batch: predict requests only, few rows in all."""
    return all(type(p.rows) is Scored for p in batch) and sum(p.n for p in batch) <= ROWS


def write_small(connection: Connection, batch: Sequence[Pending]) -> tuple[list[int], list[Written]]:
    """write_batch for a batch that `fits`: one transaction on `connection`'s driver connection. A driver error
    rolls it back and is raised as it is; if it lost the connection, `connection` is invalidated first."""
    raw: Any = connection.connection.driver_connection
    postgres = connection.dialect.name == "postgresql"
    cursor = None
    try:
        cursor = raw.cursor()
        if not postgres:  # a writer: the write lock up front (see db.make_engine)
            cursor.execute("BEGIN IMMEDIATE")
        by_model: dict[int, list[Pending]] = {}
        for item in batch:
            by_model.setdefault(item.model.id or 0, []).append(item)
        counts: dict[int, int] = {}
        written: list[Written] = []
        for items in by_model.values():
            written += _store(cursor, connection, items, counts, postgres)
        insert_driver_rows(cursor, [item.audit for item in batch if item.audit is not None], postgres)
        raw.commit() if postgres else cursor.execute("COMMIT")
    except BaseException as exc:
        _roll_back(connection, raw, cursor, exc, postgres)
        raise
    finally:
        if cursor is not None:
            cursor.close()
    return [counts[id(item)] for item in batch], written


def _store(cursor: Any, connection: Connection, items: list[Pending], counts: dict[int, int],
           postgres: bool) -> list[Written]:
    """One model's requests: their new keys, and one segment of the rows whose ids were new (first id wins)."""
    import numpy as np
    import pyarrow as pa

    from watchtower.events.frames import KEY_COLUMNS
    from watchtower.events.scored import scored_table
    from watchtower.events.segstore.manifest import placed_values
    from watchtower.registry.service import schema_of

    model = items[0].model
    assert model.id is not None
    parts = [cast(Scored, item.rows) for item in items]  # fits: every part is Scored
    seen: set[str] = set()
    keys: list[tuple[str, datetime | None, str | None, datetime | None]] = []  # received when served
    first: list[bool] = []
    for part in parts:
        for event_id in part.ids:
            first.append(event_id not in seen)
            if first[-1]:
                seen.add(event_id)
                keys.append((event_id, part.at, part.version, part.at))
    new = set(insert_key_rows(cursor, model.id, keys, postgres))
    mask = np.array([f and event_id in new for f, event_id in
                     zip(first, (i for part in parts for i in part.ids), strict=True)], dtype=bool)
    counts.update(accepted(items, mask))
    if not mask.any():
        return []
    table = scored_table(parts, schema_of(model), model.task)
    if not mask.all():
        table = table.filter(pa.array(mask))
    segment = table.drop_columns([c for c in KEY_COLUMNS if c in table.column_names])
    values = placed_values(connection, model.id, segment)  # fewer than INLINE_ROWS rows: bytes for its row
    assert values is not None
    segment_id = _insert_segment(cursor, values, postgres)
    return [(model, segment_id, segment)]


def _insert_segment(cursor: Any, values: dict[str, Any], postgres: bool) -> int:
    """The segment's manifest row (its bytes inline, or its file's path); its id. One row: plain parameters."""
    mark = "%s" if postgres else "?"
    cursor.execute(f"INSERT INTO event_segment ({', '.join(_SEGMENT_COLUMNS)}) VALUES "
                   f"({', '.join([mark] * len(_SEGMENT_COLUMNS))}) RETURNING id",
                   [time_text(v) if not postgres and isinstance(v, datetime) else v
                    for v in (values[c] for c in _SEGMENT_COLUMNS)])
    return int(cursor.fetchone()[0])


def _roll_back(connection: Connection, raw: Any, cursor: Any, exc: BaseException, postgres: bool) -> None:
    """Undo the transaction; a connection the error left unusable is invalidated, so the writer takes a new one."""
    try:
        raw.rollback() if postgres else raw.execute("ROLLBACK")
    except Exception:
        pass  # the connection is gone, or no transaction was open (BEGIN failed): nothing to undo
    error: Any = exc  # the driver's own error, which is what the dialect's check takes
    lost = isinstance(exc, Exception) and connection.dialect.is_disconnect(error, raw, cursor)
    if lost or getattr(raw, "closed", False) or getattr(raw, "broken", False):
        connection.invalidate(exc if isinstance(exc, Exception) else None)
