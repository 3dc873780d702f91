"""Compaction: merge a model's small segments a bounded batch at a time, without blocking ingest, roll up each
closed profile bucket's profiles (rollups.py), and sweep files no manifest row needs any more.

A merge reads its segments and writes the merged file outside any write transaction, then a short one swaps the
manifest: it retires the old rows (only if none was retired meanwhile: two replicas compacting the same segments
cannot both win) and adds the new one, with its profile (the merge of its parts' profiles, see profiles.py).
Old files stay until the grace period has passed, so a reader that read the manifest before the swap still finds
them; the sweep then deletes them and their rows, and files that no row ever pointed to (a batch whose transaction
rolled back after its file was written).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from sqlalchemy import delete, update
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.events.models import EventSegment
from watchtower.events.segstore.binding import bound
from watchtower.events.segstore.manifest import oldest_first, place, read
from watchtower.events.segstore.stores import FileStore
from watchtower.registry.models import MonitoredModel

log = logging.getLogger(__name__)
COMPACT_BELOW_ROWS = 50_000  # segments smaller than this are merged...
COMPACT_TARGET_ROWS = 500_000  # ...into segments of up to this many rows, one date partition each
# ...and of up to this many parts: the event writer's flushes can hold a row each, and a merge names its parts in
# one IN list (SQLite takes at most 32,766 values in a statement).
COMPACT_MAX_PARTS = 10_000
CHUNK = 1000


@dataclass(frozen=True)
class Small:
    id: int
    path: str | None
    n_rows: int
    bucket: datetime  # the start of the profile bucket its events fall in (all of them: see `compact`)


def bucket_start(moment: datetime, bucket_s: int) -> datetime:
    """The start of the WATCHTOWER_PROFILE_BUCKET_S bucket holding `moment` (the grid starts at the epoch)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    seconds = int(aware.timestamp()) // bucket_s * bucket_s
    return datetime.fromtimestamp(seconds, tz=UTC)


def compact_all(engine: Engine) -> int:
    """One compaction run: a bounded merge per model, then the sweep; a failure is logged and skipped."""
    with Session(engine) as session:
        model_ids = session.exec(select(EventSegment.model_id).distinct()
                                 .where(col(EventSegment.retired_at).is_(None))).all()
    from watchtower.events.segstore.rollups import roll_up

    merged = 0
    for model_id in model_ids:
        try:
            merged += compact(engine, model_id)
        except Exception:  # the next run retries; other models still compact
            log.exception("compacting the event segments of model %s failed", model_id)
        try:
            roll_up(engine, model_id)  # after the merges, which change the buckets' segments
        except Exception:
            log.exception("rolling up the segment profiles of model %s failed", model_id)
    try:
        sweep(engine)
    except Exception:
        log.exception("sweeping unreferenced event segments failed")
    return merged


def compact(engine: Engine, model_id: int, below: int = COMPACT_BELOW_ROWS, target: int = COMPACT_TARGET_ROWS,
            max_rows: int | None = None) -> int:
    """Merge the model's oldest small segments into segments of up to `target` rows, reading about `max_rows`
    rows (default: the bound setting) in this call; return how many segments were merged away."""
    segments = bound(engine)
    budget = max_rows or segments.max_rows
    with Session(engine) as session:
        rows = session.execute(sql_select(col(EventSegment.id), col(EventSegment.path), col(EventSegment.n_rows),
                                          col(EventSegment.min_ts), col(EventSegment.max_ts))
                               .where(col(EventSegment.model_id) == model_id, col(EventSegment.retired_at).is_(None),
                                      col(EventSegment.n_rows) < below)
                               .order_by(col(EventSegment.min_ts), col(EventSegment.id))).all()
    # A segment straddling a bucket edge stays as it is: merged, it would make a large segment cross the edge,
    # and a profile-mode window ending there would have to read it row by row.
    small = [Small(i, p, n, bucket_start(low, segments.bucket_s)) for i, p, n, low, high in rows
             if i is not None and bucket_start(low, segments.bucket_s) == bucket_start(high, segments.bucket_s)]
    return sum(_merge(engine, model_id, group) for group in plan(small, target, budget))


def plan(small: Sequence[Small], target: int, budget: int) -> list[list[Small]]:
    """Groups of at least two segments of one profile bucket (so of one date), each up to `target` rows and
    COMPACT_MAX_PARTS segments, all together up to `budget` rows plus the segment that reaches it (so a run always
    progresses, even when the oldest segment fills the budget)."""
    groups: list[list[Small]] = []
    size = spent = 0
    for segment in small:
        if spent >= budget:
            break
        if not groups or size + segment.n_rows > target or groups[-1][0].bucket != segment.bucket \
                or len(groups[-1]) >= COMPACT_MAX_PARTS:
            groups.append([])
            size = 0
        groups[-1].append(segment)
        size += segment.n_rows
        spent += segment.n_rows
    return [g for g in groups if len(g) > 1]


def _merge(engine: Engine, model_id: int, group: list[Small]) -> int:
    ids = [s.id for s in group]
    with Session(engine) as session:  # reads take no lock that ingest waits for
        table, profile = _read_and_profile(session, model_id, group)
    merged = place(engine, model_id, table)  # the file is complete before the swap names it
    assert merged is not None
    merged.profile = profile
    with Session(writer(engine)) as session:  # the swap: two statements, the write lock held for milliseconds
        retired = session.execute(update(EventSegment).where(
            col(EventSegment.id).in_(ids), col(EventSegment.retired_at).is_(None))
            .values(retired_at=utcnow()).returning(col(EventSegment.id))).all()
        if len(retired) != len(ids):  # another replica merged some of them first: its merge stands
            session.rollback()
            _remove(engine, [merged.path])
            log.info("segments of model %s were compacted by another process", model_id)
            return 0
        session.add(merged)
        session.commit()  # a commit that fails leaves our file unreferenced: the sweep deletes it
    return len(ids)


def _read_and_profile(session: Session, model_id: int, group: list[Small]) -> tuple[pa.Table, bytes]:
    """The group's rows, oldest first, and their profile: the merge of the parts' stored profiles and a profile
    of the rows of the parts that have none (read apart from the others, so nothing is read twice)."""
    from watchtower.events.segstore.profiles import Merger, profile_table, stored_profiles

    model = session.get(MonitoredModel, model_id)
    assert model is not None
    profiled = set(session.exec(select(EventSegment.id).where(
        col(EventSegment.id).in_([s.id for s in group]), col(EventSegment.profile).is_not(None))).all())
    segments = bound(session.get_bind())
    merger = Merger(model, segments)
    for profile in stored_profiles(session, [s.id for s in group if s.id in profiled]):
        merger.add(profile)
    tables = []
    unprofiled = [(s.id, s.path) for s in group if s.id not in profiled]
    if unprofiled:
        tables.append(read(session, unprofiled))
        merger.add(profile_table(model, tables[-1], segments))
    if len(unprofiled) < len(group):
        tables.append(read(session, [(s.id, s.path) for s in group if s.id in profiled]))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    return oldest_first(table), merger.result().to_bytes()


def sweep(engine: Engine, now: datetime | None = None) -> int:
    """Delete retired segments and unreferenced files older than the grace period; return how many files went."""
    cutoff = (now or utcnow()) - bound(engine).grace
    with Session(engine) as session:
        retired = session.exec(select(EventSegment.id, EventSegment.path).where(
            col(EventSegment.retired_at) < cutoff)).all()
    # Files before rows: a crash in between leaves retired rows whose files are gone, which nothing reads.
    paths = [p for _, p in retired if p is not None]
    _remove(engine, paths)
    ids = [i for i, _ in retired if i is not None]
    for start in range(0, len(ids), CHUNK):
        with Session(writer(engine)) as session:
            session.execute(delete(EventSegment).where(col(EventSegment.id).in_(ids[start:start + CHUNK])))
            session.commit()
    return len(paths) + _sweep_orphans(engine, cutoff)


def _sweep_orphans(engine: Engine, cutoff: datetime) -> int:
    """Files older than the cutoff that no manifest row names. They are listed before the manifest is read, so
    a file whose row commits in between counts as referenced."""
    store = bound(engine).store
    if not isinstance(store, FileStore):
        return 0
    files = store.files(older_than=cutoff)
    known: set[str] = set()
    with Session(engine) as session:
        for start in range(0, len(files), CHUNK):
            known.update(p for p in session.exec(select(EventSegment.path).where(
                col(EventSegment.path).in_(files[start:start + CHUNK]))).all() if p is not None)
    orphans = [f for f in files if f not in known]
    if orphans:
        log.info("deleting %d unreferenced segment files", len(orphans))
        store.remove(orphans)
    return len(orphans)


def _remove(engine: Engine, paths: Sequence[str | None]) -> None:
    store = bound(engine).store
    if isinstance(store, FileStore):
        store.remove([p for p in paths if p is not None])
