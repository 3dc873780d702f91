"""Idempotency keys into serving_event: one row per new event id, written a batch at a time in the caller's
transaction, by whatever path the database inserts fastest (binary COPY on PostgreSQL, one INSERT ... SELECT over
a JSON array on SQLite), and a slower path that says which ids were new when some were stored before."""

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlmodel import Session

from detectors.base import ID, TS
from watchtower.driver_rows import insert_rows
from watchtower.events.frames import RECEIVED_AT, VERSION, column_micros, from_micros


def key_table(keys: pa.Table) -> pa.Table:
    """The idempotency keys as text columns, times spelled as SQLite stores them."""
    def utc_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
        if len(column) == 0:
            return pa.chunked_array([], pa.string())
        if not pa.types.is_timestamp(column.type):  # all None: nothing to format
            return column.cast(pa.string())
        # Cast without the zone first: the values stay UTC, and Arrow formats naive times 50x faster.
        return column.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us")).cast(pa.string())

    return pa.table({"event_id": keys.column(ID).cast(pa.string()), "ts": utc_text(keys.column(TS)),
                     "version": keys.column(VERSION).cast(pa.string()),
                     "received_at": utc_text(keys.column(RECEIVED_AT))})


# PostgreSQL's binary COPY: the server takes times and numbers as they are instead of parsing their text (20-30%
# less of its time per key row than CSV).
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no header extension
_BINARY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00Z, where PostgreSQL counts its timestamps from


def copy_binary(keys: pa.Table, model_id: int | None) -> bytes:
    """The keys (ID, TS, VERSION, RECEIVED_AT; times non-null) as a binary COPY of (model_id if given, event_id,
    ts, version, received_at), built a column at a time: each row's fields are fixed-width runs of big-endian
    numbers and the id's and version's bytes, joined by Arrow."""
    n = keys.num_rows
    ids = keys.column(ID).cast(pa.binary()).combine_chunks()
    versions = keys.column(VERSION).cast(pa.binary()).combine_chunks()
    head = np.empty(n, [("fields", ">i2"), ("model_size", ">i4"), ("model", ">i4"), ("id_size", ">i4")]
                    if model_id is not None else [("fields", ">i2"), ("id_size", ">i4")])
    head["fields"] = 5 if model_id is not None else 4
    if model_id is not None:
        head["model_size"], head["model"] = 4, model_id
    head["id_size"] = pc.binary_length(ids).to_numpy(zero_copy_only=False)
    ts = np.empty(n, [("size", ">i4"), ("us", ">i8")])
    ts["size"], ts["us"] = 8, _pg_micros(keys.column(TS))
    version_size = np.asarray(pc.binary_length(versions).fill_null(-1).to_numpy(zero_copy_only=False), ">i4")
    received = np.empty(n, [("size", ">i4"), ("us", ">i8")])
    received["size"], received["us"] = 8, _pg_micros(keys.column(RECEIVED_AT))
    rows = pc.binary_join_element_wise(_fixed(head), ids, _fixed(ts), _fixed(version_size),
                                       versions.fill_null(b""), _fixed(received), b"")
    offsets = np.frombuffer(rows.buffers()[1], np.int32, n + 1, rows.offset * 4)
    data = rows.buffers()[2]
    return b"".join((_BINARY_HEADER, memoryview(data)[offsets[0]:offsets[n]], _BINARY_TRAILER))


def _pg_micros(times: pa.ChunkedArray) -> "np.ndarray[Any, np.dtype[np.int64]]":
    micros = column_micros(times).to_numpy(zero_copy_only=False)
    return np.asarray(micros, np.int64) - _PG_EPOCH_US


def _fixed(values: "np.ndarray[Any, Any]") -> pa.Array:
    """Fixed-width records as an Arrow binary column, one value per record."""
    size = values.dtype.itemsize
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(size), len(values),
                                                [None, pa.py_buffer(values.tobytes())]).cast(pa.binary())


_KEY_TABLE = "ingest_key"
_COPY_KEYS = f"COPY {_KEY_TABLE} (event_id, ts, version, received_at) FROM STDIN (FORMAT binary)"
_COPY_EVENTS = "COPY serving_event (model_id, event_id, ts, version, received_at) FROM STDIN (FORMAT binary)"
# WHERE true: SQLite's parser needs it between SELECT and an upsert clause.
_INSERT_KEYS = (f"INSERT INTO serving_event (model_id, event_id, ts, version, received_at) "
                f"SELECT {{model}}, event_id, ts, version, received_at FROM {_KEY_TABLE} WHERE true "
                "ON CONFLICT (model_id, event_id) DO NOTHING RETURNING event_id")


def insert_keys(session: Session, model_id: int, keys: pa.Table, postgres: bool) -> list[str]:
    """Insert the keys (ID, TS, VERSION, RECEIVED_AT) not stored yet (unique within `keys`); return the event ids
    really inserted."""
    if keys.num_rows == 0:
        return []
    raw = session.connection().connection.driver_connection
    cursor = raw.cursor()  # type: ignore[union-attr]
    if keys.num_rows <= SMALL_KEYS:
        try:
            return _insert_few(cursor, model_id, keys, postgres)
        finally:
            cursor.close()
    if not postgres:
        keys = key_table(keys)
    try:
        if (_all_new_postgres if postgres else _all_new_sqlite)(cursor, model_id, keys):
            return keys.column(0).to_pylist()  # type: ignore[no-any-return]
        # One temporary table per connection, emptied at commit; a rolled-back transaction takes it away too.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_KEY_TABLE} (event_id text NOT NULL, "
                       f"ts {'timestamptz' if postgres else 'DATETIME'} NOT NULL, version text, received_at "
                       f"{'timestamptz' if postgres else 'DATETIME'}){' ON COMMIT DELETE ROWS' if postgres else ''}")
        cursor.execute(f"DELETE FROM {_KEY_TABLE}")  # an earlier batch of this transaction, maybe another model's
        if postgres:
            with cursor.copy(_COPY_KEYS) as copy:
                copy.write(copy_binary(keys, None))
        else:
            cursor.executemany(f"INSERT INTO {_KEY_TABLE} VALUES (?, ?, ?, ?)", _rows(keys))
        cursor.execute(_INSERT_KEYS.format(model=int(model_id)))
        return [row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()


# Up to this many keys (the event writer's flush of a few predictions) go in one INSERT ... VALUES ... RETURNING:
# the paths below set up whole columns in Arrow and a savepoint, which costs more than a few rows do.
SMALL_KEYS = 64


def _insert_few(cursor: Any, model_id: int, keys: pa.Table, postgres: bool) -> list[str]:
    # Times through int64: Arrow's to_pylist of zoned times costs 35 us a value.
    ts, received = ([None if m is None else from_micros(m) for m in column_micros(keys.column(c)).to_pylist()]
                    for c in (TS, RECEIVED_AT))
    rows = zip(keys.column(ID).to_pylist(), ts, keys.column(VERSION).to_pylist(), received, strict=True)
    return insert_key_rows(cursor, model_id, list(rows), postgres)


def insert_key_rows(cursor: Any, model_id: int, rows: list[tuple[str, datetime | None, str | None, datetime | None]],
                    postgres: bool) -> list[str]:
    """A few keys (event id, ts, version, received_at; unique ids) in one statement on the driver's cursor, those
    stored before skipped; the event ids really inserted."""
    return insert_rows(cursor, "serving_event", _KEY_COLUMNS, [(model_id, *row) for row in rows], postgres,
                       conflict=" ON CONFLICT (model_id, event_id) DO NOTHING", returning="event_id")


_KEY_COLUMNS = {"model_id": "int", "event_id": "text", "ts": "time", "version": "text", "received_at": "time"}


def _all_new_postgres(cursor: Any, model_id: int, keys: pa.Table) -> bool:
    """PostgreSQL, the common case: the keys COPYed straight into serving_event (the temporary table and
    INSERT ... SELECT ... RETURNING cost PostgreSQL 60% more). An id stored before fails the COPY: nothing is
    kept (back to the savepoint) and the caller takes the path that says which ones were new."""
    from psycopg.errors import UniqueViolation

    cursor.execute("SAVEPOINT ingest_keys")
    try:
        with cursor.copy(_COPY_EVENTS) as copy:
            copy.write(copy_binary(keys, model_id))
    except UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT ingest_keys")
        cursor.execute("RELEASE SAVEPOINT ingest_keys")
        return False
    cursor.execute("RELEASE SAVEPOINT ingest_keys")
    return True


def _rows(keys: pa.Table) -> Iterator[tuple[Any, ...]]:
    """The key_table's rows as tuples for executemany."""
    return zip(*(column.to_pylist() for column in keys.columns), strict=True)


def _all_new_sqlite(cursor: Any, model_id: int, keys: pa.Table) -> bool:
    """SQLite, the common case (no id stored before): the keys straight into serving_event, without the temporary
    table's extra pass and RETURNING. If some were stored before, nothing is kept (back to the savepoint) and the
    caller takes the path that says which ones were new."""
    cursor.execute("SAVEPOINT ingest_keys")
    packed = _packed_keys(keys)
    if packed is None:
        cursor.executemany(f"INSERT INTO serving_event (model_id, event_id, ts, version, received_at) VALUES "
                           f"({int(model_id)}, ?, ?, ?, ?) ON CONFLICT (model_id, event_id) DO NOTHING", _rows(keys))
    else:
        cursor.execute(_INSERT_PACKED.format(model=int(model_id)), packed)
    inserted = bool(cursor.rowcount == keys.num_rows)  # rows inserted; conflicts are not counted
    if not inserted:
        cursor.execute("ROLLBACK TO ingest_keys")
    cursor.execute("RELEASE ingest_keys")
    return inserted


# One statement for the whole batch: SQLite unpacks a JSON array of "<ts><received_at><event id>" strings (the
# times fixed-width) in C, where executemany binds a Python tuple per row (about 40% of the keys' insert time).
_TIME_TEXT = len("2026-01-01 00:00:00.000000")
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # what a JSON string must escape
_INSERT_PACKED = (f"INSERT INTO serving_event (model_id, event_id, ts, version, received_at) SELECT {{model}}, "
                  f"substr(value, {2 * _TIME_TEXT + 1}), substr(value, 1, {_TIME_TEXT}), ?, "
                  f"substr(value, {_TIME_TEXT + 1}, {_TIME_TEXT}) FROM json_each(?) WHERE true "
                  "ON CONFLICT (model_id, event_id) DO NOTHING")


def _packed_keys(keys: pa.Table) -> tuple[str | None, str] | None:
    """(version, JSON array of packed keys) for _INSERT_PACKED, or None when the rows do not share one version, a
    time is not spelled in _TIME_TEXT characters, or SQLite may lack json_each (built in from 3.38)."""
    ids, ts, versions, received = keys.columns
    if sqlite3.sqlite_version_info < (3, 38) or len(pc.unique(versions)) != 1 or ts.null_count or received.null_count:
        return None
    if not pc.all(pc.equal(pc.utf8_length(ts), _TIME_TEXT)).as_py() or \
            not pc.all(pc.equal(pc.utf8_length(received), _TIME_TEXT)).as_py():
        return None
    packed = pc.binary_join_element_wise(ts, received, ids, "").combine_chunks()
    if pc.any(pc.match_substring_regex(ids, _NEEDS_ESCAPE)).as_py():
        return versions[0].as_py(), json.dumps(packed.to_pylist(), ensure_ascii=False)  # raw UTF-8: no \\u escapes
    # The usual ids need no escaping: the JSON array is joined by Arrow, without a Python string per row.
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(packed)], pa.int32()), packed), '","')
    return versions[0].as_py(), f'["{joined[0].as_py()}"]'
