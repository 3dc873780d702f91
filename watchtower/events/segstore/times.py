"""When events were served, answered from the segment manifest and the segments' TS columns: how many in a range,
the first of a range, the n-th newest. Segments lying inside a range count off the manifest (min_ts, max_ts,
n_rows); only those crossing its edges are read, their TS column alone. The idempotency keys keep no time index:
one cost a third of PostgreSQL's work per stored key and a quarter of SQLite's."""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow.compute as pc
from sqlalchemy import ColumnElement, and_, not_
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, func, select

from detectors.base import TS
from watchtower.events.frames import column_micros, from_micros
from watchtower.events.models import EventSegment
from watchtower.events.segstore.manifest import NS_MAX, NS_MIN, live_overlapping, read, ts_within

Listed = tuple[int, str | None, datetime, datetime, int]  # id, path, min_ts, max_ts, n_rows
# Segments read at once while looking for the n-th time: enough rows for the n asked, at least this many files.
MIN_BATCH = 16


def count_between(session: Session, model_id: int, start: datetime, end: datetime) -> int:
    """Events served in [start, end)."""
    inside = session.exec(select(func.sum(EventSegment.n_rows)).where(
        *live_overlapping(model_id, start, end), _lies_inside(start, end))).one()
    return int(inside or 0) + len(_crossing_times(session, model_id, start, end))


def first_between(session: Session, model_id: int, start: datetime, end: datetime) -> datetime | None:
    """When the first event of [start, end) was served; None for none."""
    inside = session.exec(select(func.min(EventSegment.min_ts)).where(
        *live_overlapping(model_id, start, end), _lies_inside(start, end))).one()
    crossing = _crossing_times(session, model_id, start, end)
    first = from_micros(int(crossing.min())) if len(crossing) else None
    return min((t for t in (inside, first) if t is not None), default=None)


def _lies_inside(start: datetime, end: datetime) -> ColumnElement[bool]:
    """manifest.lies_inside as the manifest's condition: a segment's events all lie in [start, end), clamped alike."""
    return and_(col(EventSegment.min_ts) >= max(start, NS_MIN), col(EventSegment.max_ts) < min(end, NS_MAX))


def _crossing_times(session: Session, model_id: int, start: datetime, end: datetime) -> "np.ndarray[Any, Any]":
    """The times in [start, end) of the live segments that cross one of its edges, as microseconds."""
    rows = session.exec(select(EventSegment.id, EventSegment.path).where(
        *live_overlapping(model_id, start, end), not_(_lies_inside(start, end))).order_by(col(EventSegment.id))).all()
    return _times(session, [(i, p) for i, p in rows if i is not None], ts_within(start, end))


def newest_nth(session: Session, model_id: int, n: int) -> tuple[datetime, datetime] | None:
    """(the n-th newest time, the newest) over all the model's events; None for fewer than n events."""
    listed = _listed(session, model_id, None, newest_first=True)
    found = _nth(session, listed, n, newest_first=True)
    if found is None:
        return None
    return found, max(row[3] for row in listed)


def nth_from(session: Session, model_id: int, start: datetime, n: int) -> datetime | None:
    """The n-th earliest time at or after `start`; None for fewer than n such events."""
    return _nth(session, _listed(session, model_id, start, newest_first=False), n, newest_first=False, start=start)


def _listed(session: Session, model_id: int, start: datetime | None, newest_first: bool) -> list[Listed]:
    query = sql_select(col(EventSegment.id), col(EventSegment.path), col(EventSegment.min_ts),
                       col(EventSegment.max_ts), col(EventSegment.n_rows)).where(
        col(EventSegment.model_id) == model_id, col(EventSegment.retired_at).is_(None))
    if start is not None:
        query = query.where(col(EventSegment.max_ts) >= start)
    order = col(EventSegment.max_ts).desc() if newest_first else col(EventSegment.min_ts)
    return [(i, p, lo, hi, n) for i, p, lo, hi, n in session.execute(query.order_by(order)).all() if i is not None]


def _nth(session: Session, listed: Sequence[Listed], n: int, newest_first: bool,
         start: datetime | None = None) -> datetime | None:
    """The n-th time in the listed segments' order (newest first: by max_ts descending; else by min_ts, from
    `start`). Segments are read in that order until the n-th time found so far lies beyond every segment not
    read: none of them can hold a time that would come before it."""
    where = None if start is None else ts_within(start, NS_MAX)
    times: list[np.ndarray[Any, Any]] = []
    have, nth = 0, None
    for batch in _batches(listed, n):
        edge = batch[0][3] if newest_first else batch[0][2]  # the furthest any unread segment reaches
        if nth is not None and (edge <= nth if newest_first else edge >= nth):  # ties cannot move the n-th
            break
        times.append(_times(session, [(i, p) for i, p, *_ in batch], where))
        have += len(times[-1])
        if have >= n:
            pooled = np.concatenate(times)
            k = have - n if newest_first else n - 1  # the n-th largest is the (have - n)-th smallest
            nth = from_micros(int(np.partition(pooled, k)[k]))
            times = [pooled]
    return nth


def _batches(listed: Sequence[Listed], n: int) -> Iterator[list[Listed]]:
    """The listed segments in order, a few at a time: enough rows for n times, and at least MIN_BATCH files."""
    at = 0
    while at < len(listed):
        rows, stop = 0, at
        while stop < len(listed) and (rows < n or stop - at < MIN_BATCH):
            rows += listed[stop][4]
            stop += 1
        yield list(listed[at:stop])
        at = stop


def _times(session: Session, segments: Sequence[tuple[int, str | None]], where: Any) -> "np.ndarray[Any, Any]":
    """The segments' TS values (filtered by `where` if given) as int64 microseconds."""
    if not segments:
        return np.empty(0, dtype=np.int64)
    table = read(session, segments, [TS], where)
    return np.asarray(pc.drop_null(column_micros(table.column(TS))).to_numpy(zero_copy_only=False), dtype=np.int64)
