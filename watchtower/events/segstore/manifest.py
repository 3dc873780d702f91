"""Segments through their manifest: a segment's file is written before its row; a window reads the live
segments overlapping it in one dataset scan, pruned to the columns and the time range it asks for."""

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import groupby
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sqlalchemy import ColumnElement, insert
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import NoResultFound
from sqlmodel import Session, col, func, select

from detectors.base import ID, TS
from watchtower.clock import utcnow
from watchtower.events.frames import TS_TYPE, column_micros, from_micros
from watchtower.events.models import EventSegment
from watchtower.events.segstore.binding import bound
from watchtower.events.segstore.stores import (
    INLINE_ROWS,
    ROW_GROUP_ROWS,
    FileStore,
    InlineStore,
    SegmentStore,
    is_parquet,
    read_inline,
    text_columns,
)

log = logging.getLogger(__name__)

WRITTEN = "watchtower_written_segments"  # Session.info: the segments a transaction wrote, with their rows
MIN_PICKS = 3  # row groups a sample reads at least: spread over the window, not one stretch of it
NS_MIN, NS_MAX = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


def as_table(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """The segment as stored: plain Arrow types, no pandas metadata; an all-None column (no errors yet, a
    categorical never set) is a string column, as it is once it holds values, so files agree on types."""
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(i, field.name, pa.nulls(table.num_rows, pa.string()))
    return _us(table).replace_schema_metadata(None)


_MANIFEST = EventSegment.__table__  # type: ignore[attr-defined]
_INSERT_SEGMENT = insert(_MANIFEST).returning(_MANIFEST.c.id)  # built once: its compiled form is cached


def write_segment(session: Session, model_id: int, frame: pd.DataFrame | pa.Table,
                  placing: "Future[Placing] | None" = None) -> int | None:
    """Write the events' file (or bytes), then insert its manifest row in the caller's transaction; its id.
    `placing`: the same rows already being written by place_ahead.

    A transaction that rolls back leaves the file unreferenced; the compaction sweep deletes it after the grace
    period. A manifest row therefore never points to a file that is not complete.
    """
    table, values = placing.result() if placing is not None else _placed(session.get_bind(), model_id, frame)
    if values is None:
        return None
    # A Core INSERT, not an ORM object and a unit-of-work flush: the event writer adds a row per flush, and the
    # ORM's per-object work was a large share of a small flush.
    segment_id = int(session.connection().execute(_INSERT_SEGMENT, values).scalar_one())
    if values.get("profile") is None:
        # Kept for the writer, which profiles the segment once the transaction has committed (profiles.written).
        session.info.setdefault(WRITTEN, []).append((segment_id, table))
    return segment_id


_INLINE = InlineStore()
Placing: TypeAlias = "tuple[pa.Table, dict[str, Any] | None]"  # a segment as stored, and its manifest row's values
AHEAD_ROWS = 1000  # smaller segments are written in the caller's thread: a hand-off would cost more than it saves
_placer: ThreadPoolExecutor | None = None


def place_ahead(bind: Engine | Connection, model_id: int, frame: pd.DataFrame | pa.Table,
                profile: Callable[[pa.Table], bytes] | None = None) -> "Future[Placing] | None":
    """Start writing a segment on a worker thread while the caller goes on (with the idempotency keys, whose
    database work runs on the other core: PostgreSQL's process, or SQLite without the GIL); None for a segment
    under AHEAD_ROWS. `profile` (the segment's profile, as bytes) is computed there too and stored in the
    manifest row, in the same transaction as the events: no UPDATE and commit of its own after the answer, while
    the next batch waits for the writer. Hand the future to write_segment, or to drop_ahead if the rows turn out
    not to be new."""
    global _placer
    if len(frame) < AHEAD_ROWS:
        return None
    if _placer is None:
        _placer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="segment-placer")
    return _placer.submit(_placed, bind, model_id, frame, profile)


def drop_ahead(bind: Engine | Connection, placing: "Future[Placing] | None") -> None:
    """A segment written ahead (if place_ahead started one) that no manifest row will name: wait for it, then
    delete its file."""
    if placing is None or placing.exception() is not None:  # nothing complete written: the caller writes its own
        return
    values = placing.result()[1]
    store = bound(bind).store
    if values is not None and values["path"] is not None and isinstance(store, FileStore):
        store.remove([values["path"]])


def _placed(bind: Engine | Connection, model_id: int, frame: pd.DataFrame | pa.Table,
            profile: Callable[[pa.Table], bytes] | None = None) -> Placing:
    table = as_table(frame)
    values = placed_values(bind, model_id, table)
    if values is not None and profile is not None:
        try:
            values["profile"] = profile(table)
        except Exception as exc:  # the events are stored all the same; the writer profiles them after the commit
            log.warning("profiling an event segment ahead failed (%s: %s); the writer profiles it after the commit",
                        type(exc).__name__, str(exc).strip()[:300])
    return table, values


def place(bind: Engine | Connection, model_id: int, table: pa.Table) -> EventSegment | None:
    """Write a segment to the bound store, however small (compaction's output); return its manifest row, not yet
    added to any session."""
    values = _put(bound(bind).store, model_id, table)
    return None if values is None else EventSegment(**values)


def placed_values(bind: Engine | Connection, model_id: int, table: pa.Table) -> dict[str, Any] | None:
    """Write a segment to the bound store, or one under INLINE_ROWS rows into its manifest row; return the
    manifest row's values (None for no rows)."""
    return _put(bound(bind).store if table.num_rows >= INLINE_ROWS else _INLINE, model_id, table)


def _put(store: SegmentStore, model_id: int, table: pa.Table) -> dict[str, Any] | None:
    if table.num_rows == 0:
        return None
    bounds = pc.min_max(column_micros(table.column(TS)))
    low, high = from_micros(bounds["min"].as_py()), from_micros(bounds["max"].as_py())
    placed = store.put(model_id, table, low.date())
    return {"model_id": model_id, "min_ts": low, "max_ts": high, "n_rows": table.num_rows,
            "n_bytes": placed.n_bytes, "path": placed.path, "parquet": placed.data, "created_at": utcnow()}


def scan(session: Session, model_id: int, start: datetime, end: datetime,
         columns: Sequence[str] | None = None) -> pa.Table:
    """Events with start <= TS < end from the live segments overlapping the range, oldest first; `columns`
    (None: all) are the only ones read, and a column no segment has is absent from the result."""
    rows = session.exec(select(EventSegment.id, EventSegment.path, EventSegment.min_ts, EventSegment.max_ts)
                        .where(*live_overlapping(model_id, start, end)).order_by(col(EventSegment.min_ts))).all()
    return oldest_first(_read_within(session, [(i, p, lo, hi) for i, p, lo, hi in rows if i is not None], columns,
                                     start, end))


def _read_within(session: Session, rows: Sequence[tuple[int, str | None, datetime, datetime]], columns: "Columns",
                 start: datetime, end: datetime) -> pa.Table:
    """read() of segments (id, path, min_ts, max_ts) in their order, keeping rows with start <= TS < end. Only the
    segments crossing an edge are filtered row by row: a window's segments mostly lie inside it, and the filter cost
    a fifth of the read (200 ms of CPU for a window of 1M events)."""
    within = ts_within(start, end)
    tables = [read(session, [(i, p) for i, p, *_ in run], columns, None if inside else within, text_as_dictionary=True)
              for inside, run in groupby(rows, key=lambda r: lies_inside(r[2], r[3], start, end))]
    if len(tables) < 2:
        return tables[0] if tables else read(session, [], columns)
    return pa.concat_tables(tables, promote_options="permissive")


def lies_inside(min_ts: datetime, max_ts: datetime, start: datetime, end: datetime) -> bool:
    """Whether a segment's events (served from min_ts to max_ts) all lie in [start, end), the bounds clamped as
    the scan's filter clamps them (ts_bound)."""
    return bool(min_ts >= max(start, NS_MIN) and max_ts < min(end, NS_MAX))


def live_overlapping(model_id: int, start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    """The manifest's condition for a model's live segments holding events of [start, end)."""
    return (col(EventSegment.model_id) == model_id, col(EventSegment.retired_at).is_(None),
            col(EventSegment.max_ts) >= start, col(EventSegment.min_ts) < end)


def live_rows(session: Session, model_id: int, start: datetime, end: datetime) -> int:
    """Events in the live segments overlapping [start, end): an upper bound of the window's count (segments
    crossing an edge count whole), read off the manifest alone (segstore/times.py reads those segments' times)."""
    total = session.exec(select(func.sum(EventSegment.n_rows)).where(*live_overlapping(model_id, start, end))).one()
    return int(total or 0)


def scan_sample(session: Session, model_id: int, start: datetime, end: datetime, rows: int,
                columns: "Columns" = None) -> pa.Table:
    """About `rows` events of [start, end), for numbers that need rows but not all of them (a profile-mode
    breach's diagnosis): whole row groups spread evenly over the window's segments (at least MIN_PICKS of them,
    about twice `rows` events in all), each thinned to its share of a seeded uniform sample, so one row group at a
    time is in memory beside the sample. A window of no more than `rows` events is read whole. ID and TS come
    with named `columns` (a function choosing from the file's schema picks them itself)."""
    listed = session.execute(sql_select(col(EventSegment.id), col(EventSegment.path), col(EventSegment.n_rows),
                                        col(EventSegment.min_ts), col(EventSegment.max_ts))
                             .where(*live_overlapping(model_id, start, end)).order_by(col(EventSegment.min_ts))).all()
    segments = [(i, p, n) for i, p, n, _, _ in listed if i is not None]
    total = sum(n for _, _, n in segments)
    wanted = columns if columns is None or callable(columns) else [ID, TS, *columns]
    within = ts_within(start, end)
    if total <= rows:
        return oldest_first(_read_within(session, [(i, p, lo, hi) for i, p, _, lo, hi in listed if i is not None],
                                         wanted, start, end))
    # Row groups as the writer cuts them (ROW_GROUP_ROWS each, the last one shorter), in served-time order.
    groups = [(i, p, g, min(ROW_GROUP_ROWS, n - g * ROW_GROUP_ROWS))
              for i, p, n in segments for g in range(max(1, -(-n // ROW_GROUP_ROWS)))]
    picks = max(round(2 * rows * len(groups) / total), MIN_PICKS)
    chosen = [groups[int(k)] for k in np.unique(np.linspace(0, len(groups) - 1, min(picks, len(groups))).round())]
    share = min(1.0, rows / sum(n for *_, n in chosen))
    rng = np.random.default_rng(0)
    parts = []
    for segment_id, path, group, _ in chosen:
        table = _read_group(session, segment_id, path, group, wanted, within)
        keep = np.sort(rng.choice(table.num_rows, min(table.num_rows, round(table.num_rows * share)), replace=False))
        parts.append(table.take(pa.array(keep, pa.int64())))
        del table
    return oldest_first(pa.concat_tables(parts, promote_options="permissive"))


def _read_group(session: Session, segment_id: int, path: str | None, group: int, columns: "Columns",
                where: ds.Expression) -> pa.Table:
    """One row group of a segment (the last one if the file has fewer), its wanted columns and rows."""
    if path is not None:
        store = _file_store(session)
        source: Any = store.filesystem.open_input_file(store.full(path))
    else:
        blob = _blobs(session, [segment_id])[0] or b""
        if not is_parquet(blob):  # a small inline segment: one "row group"
            return _us(_selected(read_inline(blob), columns).filter(where))
        source = pa.BufferReader(blob)
    with pq.ParquetFile(source) as parquet:
        table = parquet.read_row_group(min(group, parquet.num_row_groups - 1),
                                       columns=_present(columns, parquet.schema_arrow))
    return _us(table.filter(where))


Columns: TypeAlias = Sequence[str] | Callable[[pa.Schema], list[str]] | None


def read(session: Session, rows: Sequence[tuple[int, str | None]], columns: Columns = None,
         where: ds.Expression | None = None, text_as_dictionary: bool = False) -> pa.Table:
    """The segments' rows (manifest id, path): files in one dataset scan, bytes kept in the database a batch of
    small ones or one large one at a time. `columns`: names, or a function choosing them from the data's schema
    (None: all). `text_as_dictionary`: every text column but the id comes as a dictionary column (for to_frame;
    stores.text_columns)."""
    paths = [p for _, p in rows if p is not None]
    kept = [i for i, p in rows if p is None]
    tables = []
    if paths:
        dataset = _file_store(session).dataset(paths, text_as_dictionary)
        tables.append(dataset.to_table(columns=_present(columns, dataset.schema), filter=where))
    for batch in _blob_batches(session, kept):  # a batch's bytes in memory at a time; its wanted columns and rows stay
        parts = []
        for blob in _blobs(session, batch):
            if blob is not None and is_parquet(blob):  # pruned row group by row group as it is read
                schema = pq.read_schema(pa.BufferReader(blob))
                tables.append(pq.read_table(pa.BufferReader(blob), columns=_present(columns, schema), filters=where,
                                             read_dictionary=text_columns(schema) if text_as_dictionary else None))
            elif blob is not None:  # a small inline segment: read whole, its batch filtered once
                parts.append(_us(_selected(read_inline(blob), columns)))
        if parts:
            small = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
            tables.append(small if where is None else small.filter(where))
    if not tables:
        return pa.table({ID: pa.array([], pa.string()), TS: pa.array([], TS_TYPE)})
    tables = [_us(t) for t in tables]
    if text_as_dictionary:  # the parts read as strings (inline segments) too: one type per column to concatenate
        tables = [_text_as_dictionary(t) for t in tables]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def _text_as_dictionary(table: pa.Table) -> pa.Table:
    for name in text_columns(table.schema):
        if pa.types.is_string(table.schema.field(name).type):
            table = table.set_column(table.schema.get_field_index(name), name, table.column(name).dictionary_encode())
    return table


BLOB_ALONE_BYTES = 1 << 20  # a segment kept in the database this large is fetched and read on its own...
BLOB_BATCH_BYTES = 4 << 20  # ...smaller ones in batches of up to this many bytes and BLOB_BATCH_COUNT rows
BLOB_BATCH_COUNT = 1000


def _blob_batches(session: Session, ids: Sequence[int]) -> list[list[int]]:
    """The ids in their order, cut into batches: runs of small segments, each large one alone."""
    sizes: dict[int, int] = {}
    for start in range(0, len(ids), BLOB_BATCH_COUNT):
        chunk = ids[start:start + BLOB_BATCH_COUNT]
        sizes.update((i, n) for i, n in session.exec(select(EventSegment.id, EventSegment.n_bytes)
                                                     .where(col(EventSegment.id).in_(chunk))).all() if i is not None)
    batches: list[list[int]] = []
    small: list[int] = []  # the batch being filled
    size = 0
    for segment_id in ids:
        n = sizes.get(segment_id, 0)
        if n >= BLOB_ALONE_BYTES:
            batches.append([segment_id])
            small = []
            continue
        if not small or size + n > BLOB_BATCH_BYTES or len(small) >= BLOB_BATCH_COUNT:
            small, size = [], 0
            batches.append(small)
        small.append(segment_id)
        size += n
    return batches


def _blobs(session: Session, ids: Sequence[int]) -> list[bytes | None]:
    """The bytes of segments kept in the database, in the order of `ids`. PostgreSQL sends them in binary: as
    text (psycopg's default, hex) the 138 MB of a 1M-event window crossed as twice that, 1.0-1.5 s to fetch
    instead of 0.3 s."""
    if session.get_bind().dialect.name != "postgresql":
        found = dict(session.exec(select(EventSegment.id, EventSegment.parquet)
                                  .where(col(EventSegment.id).in_(ids))).all())
    else:
        raw: Any = session.connection().connection.driver_connection
        with raw.cursor(binary=True) as cursor:
            found = {i: None if data is None else bytes(data) for i, data in cursor.execute(
                "SELECT id, parquet FROM event_segment WHERE id = ANY(%s)", (list(ids),)).fetchall()}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NoResultFound(f"event segments {missing[:10]}")
    return [found[i] for i in ids]


def _file_store(session: Session) -> FileStore:
    """The bound store, which must keep files: a manifest row with a path names one."""
    store = bound(session.get_bind()).store
    if not isinstance(store, FileStore):
        raise RuntimeError("event segments are stored as files, but WATCHTOWER_SEGMENT_STORE is 'database'")
    return store


def _us(table: pa.Table) -> pa.Table:
    """TS as TS_TYPE. A scan that includes an older nanosecond segment yields nanoseconds (a dataset cast would
    refuse sub-microsecond values): they are truncated here, as the event store's own times are."""
    if TS not in table.column_names or table.schema.field(TS).type == TS_TYPE:
        return table
    return table.set_column(table.schema.get_field_index(TS), TS, table.column(TS).cast(TS_TYPE, safe=False))


def ts_within(start: datetime, end: datetime) -> ds.Expression:
    """The scan filter start <= TS < end."""
    return (ds.field(TS) >= ts_bound(start)) & (ds.field(TS) < ts_bound(end))


def ts_bound(moment: datetime) -> pa.Scalar:
    """A bound as a TS scalar; "open" bounds (year 1970 or 9999) clamped to what nanoseconds can hold."""
    return pa.scalar(min(max(pd.Timestamp(moment), NS_MIN), NS_MAX), TS_TYPE)


def _selected(table: pa.Table, columns: Columns) -> pa.Table:
    wanted = _present(columns, table.schema)
    return table if wanted is None else table.select(wanted)


def _present(columns: Columns, schema: pa.Schema) -> list[str] | None:
    """The wanted columns the data has (segments written before a column existed lack it)."""
    if callable(columns):
        return columns(schema)
    return None if columns is None else [c for c in dict.fromkeys(columns) if c in schema.names]


def oldest_first(table: pa.Table) -> pa.Table:
    """Sorted by served time (stable, so ingest order breaks ties); a no-op on a sorted table."""
    ts = table.column(TS)
    if len(ts) < 2 or pc.all(pc.greater_equal(ts[1:], ts[:-1])).as_py() is not False:
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(TS, "ascending")]))


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas without a second copy: a block per column, Arrow buffers freed as they convert; ids stay
    Arrow strings (a million Python str objects cost more than the rest). Dictionary columns become the object
    columns a string column would (None for null), holding one str object per distinct value."""
    ids: Any = None
    if ID in table.column_names:
        ids = pd.array(table.column(ID).combine_chunks(), dtype=pd.ArrowDtype(pa.string()))
        table = table.drop_columns([ID])
    names = table.column_names
    text = {f.name: _decoded(table.column(f.name)) for f in table.schema if pa.types.is_dictionary(f.type)}
    table = table.drop_columns(list(text))  # the only reference left to the rest: self_destruct frees as it goes
    # Event frames keep nanosecond times (watchtower/events/frames.py), whatever unit the segments store.
    frame = table.to_pandas(split_blocks=True, self_destruct=True, coerce_temporal_nanoseconds=True)
    del table
    for position, name in enumerate(names):  # in the table's order
        if name in text:
            frame.insert(position, name, text[name])
    if ids is not None:
        frame.insert(0, ID, ids)
    return frame


def _decoded(column: pa.ChunkedArray) -> "np.ndarray[Any, np.dtype[np.object_]]":
    """A dictionary column's values as an object array, None for null."""
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return np.empty(0, dtype=object)
    dictionary = column.chunk(0).dictionary
    lookup = np.array([*dictionary.to_pylist(), None], dtype=object)
    codes = pa.chunked_array([c.indices for c in column.chunks], column.type.index_type).fill_null(len(dictionary))
    decoded: np.ndarray[Any, np.dtype[np.object_]] = lookup[codes.to_numpy()]
    return decoded
