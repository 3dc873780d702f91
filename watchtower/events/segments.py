"""Columnar event storage: each ingested batch is one Parquet segment; a window decodes only the segments
overlapping it, and compaction merges small segments so a window touches few of them.

A segment holds ID, TS, the model's features (float64 for numeric, string for categorical), PREDICTION
(canonical class string for classifiers, float for regressors), LATENCY, ERROR and PROBA_* columns.
"""

import io
import logging
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.base import ID, TS
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.events.models import EventSegment

log = logging.getLogger(__name__)
COMPACT_BELOW_ROWS = 50_000  # segments smaller than this are merged...
COMPACT_TARGET_ROWS = 500_000  # ...into segments of up to this many rows


def encode(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer, compression="zstd")
    return buffer.getvalue()


def read_table(data: bytes, columns: list[str] | None = None) -> pa.Table:
    table = pq.read_table(io.BytesIO(data))
    if columns is not None:  # segments written before a column existed simply lack it
        table = table.select([c for c in columns if c in table.column_names])
    return table


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas; ids stay Arrow strings: a million Python str objects cost more than the rest."""
    if ID not in table.column_names:
        return table.to_pandas()
    frame = table.drop_columns([ID]).to_pandas()
    frame.insert(0, ID, pd.array(table.column(ID).combine_chunks(), dtype=pd.ArrowDtype(pa.string())))
    return frame


def add_segment(session: Session, model_id: int, frame: pd.DataFrame) -> None:
    """Store a frame of new events as one segment (in the caller's transaction)."""
    if frame.empty:
        return
    session.add(EventSegment(model_id=model_id, min_ts=frame[TS].min().to_pydatetime(),
                             max_ts=frame[TS].max().to_pydatetime(), n_rows=len(frame), parquet=encode(frame)))


def read_segments(session: Session, model_id: int, start: datetime, end: datetime,
                  columns: list[str] | None = None) -> pd.DataFrame:
    """Events with start <= TS < end, oldest first, from the segments overlapping the range."""
    blobs = session.exec(select(EventSegment.parquet).where(
        EventSegment.model_id == model_id, col(EventSegment.max_ts) >= start, col(EventSegment.min_ts) < end)
        .order_by(col(EventSegment.min_ts))).all()
    wanted = None if columns is None else list(dict.fromkeys([ID, TS, *columns]))
    tables = [read_table(b, wanted) for b in blobs]
    if not tables:
        return pd.DataFrame({ID: pd.Series(dtype=object), TS: pd.Series(dtype="datetime64[ns, UTC]")})
    # Concatenate, filter and sort in Arrow: segments may differ in columns (a new class) or in null-only
    # columns, which pandas concatenates value by value.
    table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    ts = table.column(TS)
    inside = pc.and_(pc.greater_equal(ts, pa.scalar(start, type=ts.type)), pc.less(ts, pa.scalar(end, type=ts.type)))
    if pc.all(inside).as_py() is not True:
        table = table.filter(inside)
    return to_frame(_oldest_first(table))


def _oldest_first(table: pa.Table) -> pa.Table:
    """Sorted by served time (stable, so ingest order breaks ties); a no-op on a sorted table."""
    ts = table.column(TS).to_numpy()
    if len(ts) < 2 or bool(np.all(ts[1:] >= ts[:-1])):
        return table
    return table.take(pc.sort_indices(table, sort_keys=[(TS, "ascending")]))


def compact_all(engine: Engine) -> int:
    """Compact every model's segments, one transaction per model; a failure is logged and skipped."""
    with Session(engine) as session:
        model_ids = session.exec(select(EventSegment.model_id).distinct()).all()
    merged = 0
    for model_id in model_ids:
        try:
            with Session(writer(engine)) as session:
                merged += compact(session, model_id)
                session.commit()
        except Exception:  # e.g. another replica compacted the same segments first; the next run retries
            log.exception("compacting the event segments of model %s failed", model_id)
    return merged


def compact(session: Session, model_id: int, below: int = COMPACT_BELOW_ROWS,
            target: int = COMPACT_TARGET_ROWS) -> int:
    """Merge the model's small segments, oldest first, into segments of up to `target` rows; return how many
    segments were merged. One transaction (the caller's): readers see either the old or the new segments.
    """
    small = session.exec(select(EventSegment.id, EventSegment.n_rows).where(
        EventSegment.model_id == model_id, col(EventSegment.n_rows) < below).order_by(col(EventSegment.min_ts))
    ).all()
    groups: list[list[int]] = []
    size = 0
    for segment_id, n in small:
        if not groups or size + n > target:
            groups.append([])
            size = 0
        groups[-1].append(segment_id)  # type: ignore[arg-type]
        size += n
    merged = 0
    for ids in (g for g in groups if len(g) > 1):
        blobs = session.exec(select(EventSegment.parquet).where(col(EventSegment.id).in_(ids))).all()
        frame = to_frame(_oldest_first(pa.concat_tables([read_table(b) for b in blobs], promote_options="default")))
        # Another replica compacting the same segments deletes fewer rows than we read: give up ours.
        deleted = session.execute(delete(EventSegment).where(col(EventSegment.id).in_(ids))
                                  .returning(col(EventSegment.id))).all()
        if len(deleted) != len(ids):
            raise RuntimeError(f"segments of model {model_id} changed during compaction")
        session.add(EventSegment(model_id=model_id, min_ts=frame[TS].min().to_pydatetime(),
                                 max_ts=frame[TS].max().to_pydatetime(), n_rows=len(frame),
                                 parquet=encode(frame), created_at=utcnow()))
        merged += len(ids)
    return merged
