"""Mergeable profiles of a model's events (issue 15): one per segment, one per reference, and profiles posted from
a data lake; a window's profile is their merge, with the edges read exactly.

- A segment's profile is computed by the event writer just after its commit (never before the requests it
  holds are answered) and stored with a short UPDATE; segments under WATCHTOWER_PROFILE_MIN_ROWS rows are left
  without one (profiling costs ~6 ms whatever the size). A segment of manifest.AHEAD_ROWS rows or more (a batch
  of the events API) is profiled while the database inserts its keys instead, and its manifest row commits with
  the profile: the writer has nothing left to do for it after the answer. Compaction gives every merged segment
  one: the merge of its parts' profiles, plus a profile of the rows of the parts that had none.
- A segment without a profile (small, or a crash between the commit and the UPDATE) is read exactly by a window.
- The profiled columns: the model's schema features, PREDICTION (categorical for classifiers), the PROBA_*
  columns and, where a frame has it (the reference), LABEL. Segments never hold labels: they arrive later.
"""

import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select as sql_select
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.base import LABEL, LATENCY, PREDICTION, PROBA_PREFIX, FeatureType
from detectors.sketches.profile import (
    CategoryCounts,
    NumericSketch,
    Profile,
    count_categories,
    merge,
    profile_frame,
    sketch_floats,
    sketch_numeric,
)
from watchtower.db import writer
from watchtower.events.models import EventSegment, PostedProfile
from watchtower.events.segstore import rollups
from watchtower.events.segstore.binding import Segments, bound
from watchtower.events.segstore.manifest import WRITTEN, lies_inside, live_overlapping, read, ts_within
from watchtower.registry.models import MonitoredModel, ReferenceData

log = logging.getLogger(__name__)
MERGE_BATCH = 16  # profiles decoded and held at once while merging
EXACT_CHUNK_ROWS = 500_000  # rows of unprofiled or edge segments read (and profiled) at once


def profile_schema(model: MonitoredModel, columns: Iterable[str]) -> dict[str, FeatureType]:
    """The columns a profile of the model's events covers, given the columns a frame or file has."""
    schema: dict[str, FeatureType] = {f["name"]: f["type"] for f in model.features}
    outcome: FeatureType = "categorical" if model.task == "classification" else "numeric"
    schema[PREDICTION] = outcome
    names = list(columns)
    schema.update({n: "numeric" for n in names if n.startswith(PROBA_PREFIX)})
    if LABEL in names:
        schema[LABEL] = outcome
    return schema


def known_kind(model: MonitoredModel, name: str) -> FeatureType | None:
    """What a profile column of this name must be for the model (None: not a column the model's profiles hold)."""
    if name.startswith(PROBA_PREFIX) or name == LATENCY:
        return "numeric"
    return profile_schema(model, [LABEL]).get(name)


def profile_table(model: MonitoredModel, table: pa.Table | pd.DataFrame, segments: Segments) -> Profile:
    """The profile of some of the model's events (a segment's rows, a window's edge)."""
    if isinstance(table, pd.DataFrame):
        return profile_frame(table, profile_schema(model, table.columns), segments.profile_k, segments.category_cap)
    return profile_arrow(profile_schema(model, table.column_names), table, segments)


def profile_arrow(schema: dict[str, FeatureType], table: pa.Table, segments: Segments) -> Profile:
    """profile_table of Arrow rows, given their profile_schema (no model: safe on a thread of its own)."""
    k, cap = segments.profile_k, segments.category_cap
    numeric, categorical = {}, {}
    for name, kind in schema.items():
        column = table.column(name) if name in table.column_names else pa.nulls(table.num_rows, pa.string())
        if kind == "numeric":
            numeric[name] = _sketch_arrow(column, k)
        else:
            categorical[name] = _count_arrow(column, cap)
    return Profile(table.num_rows, numeric, categorical, k, cap)


# Arrow straight to the profile: the same numbers as profile_frame (tests compare them), a third of its time
# (no pandas Series per column; categories counted by Arrow instead of Python objects).

def _sketch_arrow(column: pa.ChunkedArray | pa.Array, k: int) -> NumericSketch:
    if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
        return sketch_numeric(column.to_pandas(), k)  # e.g. text a numeric column never should hold
    return sketch_floats(np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64), k)


def _count_arrow(column: pa.ChunkedArray | pa.Array, cap: int) -> CategoryCounts:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            or pa.types.is_null(column.type)):
        return count_categories(column.to_pandas(), cap)
    counts = pc.value_counts(column.drop_null() if isinstance(column, pa.Array) else pc.drop_null(column))
    plain = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
    if len(plain) > cap:  # beyond the cap: the sketch's own top-k and HLL logic
        return count_categories(column.to_pandas(), cap)
    return CategoryCounts({str(c): int(n) for c, n in plain.items()}, missing=column.null_count)


def reference_sketch(model: MonitoredModel, frame: pd.DataFrame, segments: Segments) -> bytes:
    """The stored profile of a reference frame (predictions and labels spelled as the event store spells them)."""
    from watchtower.events.frames import prediction_column

    frame = frame.copy()
    for column in (PREDICTION, LABEL):
        if column in frame:
            frame[column] = prediction_column(frame[column].tolist(), model.task).to_numpy()
    return profile_table(model, frame, segments).to_bytes()


class Merger:
    """Merges profiles as they come, holding at most MERGE_BATCH of them decoded; keeps only the model's columns."""

    def __init__(self, model: MonitoredModel, segments: Segments) -> None:
        self._model, self._segments = model, segments
        empty = pa.table({n: pa.array([], pa.float64() if k == "numeric" else pa.string())
                          for n, k in profile_schema(model, []).items()})
        self._total = profile_table(model, empty, segments)  # every column present, even in an empty window
        self._batch: list[Profile] = []

    def add(self, profile: Profile) -> None:
        self._batch.append(self._project(profile))
        if len(self._batch) >= MERGE_BATCH:
            self._fold()

    def result(self) -> Profile:
        self._fold()
        return self._total

    def _fold(self) -> None:
        if self._batch:
            self._total, self._batch = merge([self._total, *self._batch]), []

    def _project(self, profile: Profile) -> Profile:
        """Drop columns the model no longer has (a feature removed, or its kind changed, since it was stored)."""
        numeric = {n: s for n, s in profile.numeric.items() if known_kind(self._model, n) == "numeric"}
        categorical = {n: c for n, c in profile.categorical.items() if known_kind(self._model, n) == "categorical"}
        if len(numeric) == len(profile.numeric) and len(categorical) == len(profile.categorical):
            return profile
        return Profile(profile.rows, numeric, categorical, profile.k, profile.category_cap)


# ---- segments: at flush and at compaction -------------------------------------------------------------------

def written(session: Session) -> list[tuple[int, pa.Table]]:
    """The segments the session's transaction wrote (inserted at once, so they have ids), forgotten by the
    session."""
    return list(session.info.pop(WRITTEN, []))


def profile_written(engine: Engine, model: MonitoredModel, segments: Sequence[tuple[int, pa.Table]],
                    min_rows: int | None = None) -> int:
    """Profile committed segments and store the profiles (one short transaction); return how many were stored.
    Segments under `min_rows` (default WATCHTOWER_PROFILE_MIN_ROWS) stay without one: windows read them exactly
    until compaction profiles them."""
    store = bound(engine)
    smallest = store.profile_min_rows if min_rows is None else min_rows
    profiles = [(i, profile_table(model, t, store).to_bytes()) for i, t in segments if t.num_rows >= smallest]
    if not profiles:
        return 0
    with Session(writer(engine)) as session:
        for segment_id, data in profiles:
            session.execute(update(EventSegment).where(col(EventSegment.id) == segment_id).values(profile=data))
        session.commit()
    return len(profiles)


def stored_profiles(session: Session, ids: Sequence[int]) -> Iterator[Profile]:
    """The stored profiles of these segments (those that have one), decoded a batch at a time."""
    for start in range(0, len(ids), MERGE_BATCH):
        for data in session.exec(select(EventSegment.profile).where(
                col(EventSegment.id).in_(ids[start:start + MERGE_BATCH]), col(EventSegment.profile).is_not(None))):
            if data is not None:
                yield Profile.from_bytes(data)


# ---- windows and the reference -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PostedSpan:
    """A posted profile that crosses a window's edge: not counted (it cannot be split), named instead."""

    id: int
    start: datetime
    end: datetime
    rows: int


@dataclass(frozen=True)
class WindowProfile:
    """A window's merged profile and how it was made."""

    profile: Profile
    segments_profiled: int  # segments lying inside the window whose stored profile was merged
    segments_read: int  # segments read exactly: crossing an edge, or without a profile
    rows_read: int  # rows (inside the window) those exact reads profiled
    posted_used: tuple[int, ...]  # ids of posted profiles lying inside the window
    posted_left_out: tuple[PostedSpan, ...]  # posted profiles crossing an edge, not counted
    segments_rolled_up: int = 0  # of segments_profiled, those merged through their bucket's rollup

    @property
    def rows(self) -> int:
        return self.profile.rows


@dataclass(frozen=True)
class _Listed:
    id: int
    path: str | None
    n_rows: int
    min_ts: datetime
    max_ts: datetime
    profiled: bool


def window_profile(session: Session, model: MonitoredModel, start: datetime, end: datetime) -> WindowProfile:
    """The merged profile of the model's events with start <= ts < end (plus posted profiles inside it).

    Live segments lying wholly inside use their stored profile; segments crossing an edge and segments without a
    profile are read exactly (only the rows inside, only the profiled columns). Every event counts once: the
    manifest's min_ts/max_ts are floored to microseconds, as the bounds are, so "inside" is never wrong.
    """
    assert model.id is not None
    segments = bound(session.get_bind())
    listed = [_Listed(i, p, n, lo, hi, bool(has)) for i, p, n, lo, hi, has in session.execute(
        sql_select(col(EventSegment.id), col(EventSegment.path), col(EventSegment.n_rows), col(EventSegment.min_ts),
                   col(EventSegment.max_ts), col(EventSegment.profile).is_not(None))
        .where(*live_overlapping(model.id, start, end))
        .order_by(col(EventSegment.min_ts))).all() if i is not None]
    inside = [s for s in listed if s.profiled and lies_inside(s.min_ts, s.max_ts, start, end)]
    exact = [s for s in listed if not (s.profiled and lies_inside(s.min_ts, s.max_ts, start, end))]
    merger = Merger(model, segments)
    rolled: set[int] = set()  # segments whose bucket's rollup was merged instead of their own profiles
    buckets = rollups.by_bucket(((s.id, s.min_ts, s.max_ts) for s in inside), segments.bucket_s, start, end)
    for bucket, profile in rollups.matching(session, model.id, buckets, segments.bucket_s):
        merger.add(profile)
        rolled.update(buckets[bucket])
    for profile in stored_profiles(session, [s.id for s in inside if s.id not in rolled]):
        merger.add(profile)
    rows_read = 0
    within = ts_within(start, end)
    for chunk in _chunks(exact):
        table = read(session, [(s.id, s.path) for s in chunk], _profiled_columns(model), within)
        rows_read += table.num_rows
        merger.add(profile_table(model, table, segments))
        del table
    used, left_out = _posted(session, model.id, start, end, merger)
    return WindowProfile(merger.result(), len(inside), len(exact), rows_read, used, left_out, len(rolled))


def _posted(session: Session, model_id: int, start: datetime, end: datetime, merger: Merger
            ) -> tuple[tuple[int, ...], tuple[PostedSpan, ...]]:
    rows = session.exec(select(PostedProfile.id, PostedProfile.start, PostedProfile.end, PostedProfile.rows).where(
        PostedProfile.model_id == model_id, col(PostedProfile.reference).is_(False),
        col(PostedProfile.start) < end, col(PostedProfile.end) > start).order_by(col(PostedProfile.id))).all()
    used, left_out = [], []
    for posted_id, low, high, n in rows:
        if posted_id is None or low is None or high is None:
            continue
        if low >= start and high <= end:
            data = session.exec(select(PostedProfile.profile).where(PostedProfile.id == posted_id)).one()
            merger.add(Profile.from_bytes(data))
            used.append(posted_id)
        else:
            left_out.append(PostedSpan(posted_id, low, high, n))
    return tuple(used), tuple(left_out)


def _chunks(listed: Sequence[_Listed]) -> Iterator[list[_Listed]]:
    """Segments in groups of up to EXACT_CHUNK_ROWS rows (a bigger segment alone): bounded memory per read."""
    chunk: list[_Listed] = []
    size = 0
    for segment in listed:
        if chunk and size + segment.n_rows > EXACT_CHUNK_ROWS:
            yield chunk
            chunk, size = [], 0
        chunk.append(segment)
        size += segment.n_rows
    if chunk:
        yield chunk


def _profiled_columns(model: MonitoredModel) -> Callable[[pa.Schema], list[str]]:
    """The columns of a segment file a profile reads, given its schema (PROBA_* differ between files)."""
    wanted = set(profile_schema(model, []))
    return lambda schema: [n for n in schema.names if n in wanted or n.startswith(PROBA_PREFIX)]


def reference_profile(session: Session, model: MonitoredModel) -> Profile:
    """The model's reference profile: the newest of its posted reference profile and its reference data's sketch
    (computed from the stored frame, and stored, when the row predates sketches)."""
    assert model.id is not None
    posted = session.exec(select(PostedProfile.id, PostedProfile.created_at).where(
        PostedProfile.model_id == model.id, col(PostedProfile.reference).is_(True))
        .order_by(col(PostedProfile.id).desc()).limit(1)).first()
    reference = session.exec(select(ReferenceData.id, ReferenceData.created_at).where(
        ReferenceData.model_id == model.id).order_by(col(ReferenceData.id).desc()).limit(1)).first()
    if posted is not None and (reference is None or posted[1] >= reference[1]):
        key = _key(session, "posted", cast(int, posted[0]), posted[1])
        if key not in _REFERENCES:
            data = session.exec(select(PostedProfile.profile).where(PostedProfile.id == posted[0])).one()
            _remember(key, Profile.from_bytes(data))
        return _REFERENCES[key]
    assert reference is not None, "every model has a reference"
    key = _key(session, "data", cast(int, reference[0]), reference[1])
    if key not in _REFERENCES:
        # On SQLite reading `sketch` walks the row's reference Parquet first (a column before it): once a process.
        sketch = session.exec(select(ReferenceData.sketch).where(ReferenceData.id == reference[0])).one()
        _remember(key, Profile.from_bytes(sketch if sketch is not None
                                          else _store_sketch(session, model, cast(int, reference[0]))))
    return _REFERENCES[key]


# Decoded reference profiles by database, kind, row id and creation time: those rows never change once written,
# so a process keeps them (the time tells a row from a new one that reused its id in a wiped database).
_Key = tuple[str, str, int, datetime]
_REFERENCES: dict[_Key, Profile] = {}
MAX_REFERENCES = 64


def _key(session: Session, kind: str, row_id: int, created_at: datetime) -> _Key:
    return str(session.get_bind().engine.url), kind, row_id, created_at


def _remember(key: _Key, profile: Profile) -> None:
    if len(_REFERENCES) >= MAX_REFERENCES:
        _REFERENCES.clear()
    _REFERENCES[key] = profile


def _store_sketch(session: Session, model: MonitoredModel, reference_id: int) -> bytes:
    """Profile a reference stored before sketches existed, and keep the result (a failed write only logs)."""
    parquet = session.exec(select(ReferenceData.parquet).where(ReferenceData.id == reference_id)).one()
    data = reference_sketch(model, pd.read_parquet(io.BytesIO(parquet)), bound(session.get_bind()))
    try:
        with Session(writer(session.get_bind().engine)) as own:
            own.execute(update(ReferenceData).where(col(ReferenceData.id) == reference_id,
                                                    col(ReferenceData.sketch).is_(None)).values(sketch=data))
            own.commit()
    except Exception:  # the profile is still right; the next use computes it again
        log.exception("could not store the reference sketch of model %s", model.id)
    return data
