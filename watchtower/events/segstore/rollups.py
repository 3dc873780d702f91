"""Profile rollups (issue 15): the merged profile of one profile bucket's segments, so a window over 100M events
merges a few dozen stored profiles instead of hundreds.

A rollup is a cache, never the truth. It names the segments it merged (a fingerprint of their ids), and a window
uses it only while the profiled live segments lying wholly in its bucket are exactly those; otherwise the window
merges that bucket's segment profiles, as without rollups. A late segment, a compaction or a sweep changes the
set. Only the compactor writes rollups, after its merges, for buckets that have closed (so a monitor pass stays
read-only): the first pass after a burst of events finds them too. It deletes those older than it keeps up.
"""

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy import select as sql_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.sketches.profile import Profile
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.events.models import EventSegment, ProfileRollup
from watchtower.events.segstore.binding import bound
from watchtower.events.segstore.compaction import bucket_start
from watchtower.registry.models import MonitoredModel

log = logging.getLogger(__name__)
MIN_SEGMENTS = 2  # a bucket of one segment has its profile already
RECENT = timedelta(days=7)  # the compactor rolls up buckets this recent; older windows merge segment profiles
MAX_SEGMENTS_PER_RUN = 2_000  # segment profiles one compaction run decodes for rollups, per model
CHUNK = 500  # buckets per IN (...) list

Placed = tuple[int, datetime, datetime]  # a segment's id, min_ts, max_ts


def fingerprint(ids: Iterable[int]) -> str:
    """What a rollup merged: the sha256 of its segments' sorted ids."""
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()


def by_bucket(segments: Iterable[Placed], bucket_s: int, start: datetime | None = None,
              end: datetime | None = None) -> dict[datetime, list[int]]:
    """Segment ids by the bucket each lies wholly in, for buckets of at least MIN_SEGMENTS segments lying wholly
    in [start, end) (a window: a bucket it cuts is not all inside it). Segments crossing a bucket edge: in none."""
    found: dict[datetime, list[int]] = defaultdict(list)
    width = timedelta(seconds=bucket_s)
    for segment_id, low, high in segments:
        bucket = bucket_start(low, bucket_s)
        if bucket != bucket_start(high, bucket_s):
            continue
        if (start is not None and bucket < start) or (end is not None and bucket + width > end):
            continue
        found[bucket].append(segment_id)
    return {b: ids for b, ids in found.items() if len(ids) >= MIN_SEGMENTS}


def current(session: Session, model_id: int, buckets: Mapping[datetime, Sequence[int]],
            bucket_s: int) -> dict[datetime, int]:
    """The ids of the stored rollups of these buckets that merged exactly their listed segments, by bucket."""
    if not buckets:
        return {}
    wanted = {b: fingerprint(ids) for b, ids in buckets.items()}
    found = {}
    for start in range(0, len(wanted), CHUNK):
        for rollup_id, bucket, segments in session.exec(
                select(ProfileRollup.id, ProfileRollup.bucket_start, ProfileRollup.segments).where(
                    ProfileRollup.model_id == model_id, ProfileRollup.bucket_s == bucket_s,
                    col(ProfileRollup.bucket_start).in_(list(wanted)[start:start + CHUNK]))).all():
            bucket = bucket_start(bucket, bucket_s)  # SQLite hands back naive UTC
            if rollup_id is not None and wanted.get(bucket) == segments:
                found[bucket] = rollup_id
    return found


def matching(session: Session, model_id: int, buckets: Mapping[datetime, Sequence[int]],
             bucket_s: int) -> Iterator[tuple[datetime, Profile]]:
    """The current rollups of these buckets (see `current`), decoded one at a time."""
    for bucket, rollup_id in current(session, model_id, buckets, bucket_s).items():
        data = session.exec(select(ProfileRollup.profile).where(ProfileRollup.id == rollup_id)).one()
        yield bucket, Profile.from_bytes(data)


def roll_up(engine: Engine, model_id: int, now: datetime | None = None,
            max_segments: int = MAX_SEGMENTS_PER_RUN) -> int:
    """Store the rollups of the model's closed recent buckets that have none or a stale one, oldest first, decoding
    at most about `max_segments` segment profiles; return how many were stored."""
    from watchtower.events.segstore.profiles import Merger, stored_profiles

    now = now or utcnow()
    segments = bound(engine)
    bucket_s = segments.bucket_s
    closed = bucket_start(now, bucket_s)  # buckets ending by the start of the current one
    with Session(engine) as session:
        model = session.get(MonitoredModel, model_id)
        placed = session.execute(sql_select(col(EventSegment.id), col(EventSegment.min_ts), col(EventSegment.max_ts))
                                 .where(col(EventSegment.model_id) == model_id,
                                        col(EventSegment.retired_at).is_(None),
                                        col(EventSegment.profile).is_not(None),
                                        col(EventSegment.min_ts) >= now - RECENT,
                                        col(EventSegment.max_ts) < closed)).all()
        buckets = by_bucket(((i, low, high) for i, low, high in placed), bucket_s)
        done = set(current(session, model_id, buckets, bucket_s))
    if model is None:
        return 0
    with Session(writer(engine)) as session:  # rollups older than the compactor keeps up are no longer used
        session.execute(delete(ProfileRollup).where(col(ProfileRollup.model_id) == model_id,
                                                    col(ProfileRollup.bucket_start) < now - RECENT - timedelta(days=1)))
        session.commit()
    stored = spent = 0
    for bucket in sorted(set(buckets) - done):
        if spent >= max_segments:
            break
        ids = sorted(buckets[bucket])
        merger = Merger(model, segments)
        with Session(engine) as session:
            for profile in stored_profiles(session, ids):
                merger.add(profile)
        spent += len(ids)
        rollup = merger.result()
        _store(engine, ProfileRollup(model_id=model_id, bucket_start=bucket, bucket_s=bucket_s,
                                     segments=fingerprint(ids), n_segments=len(ids), rows=rollup.rows,
                                     profile=rollup.to_bytes(), created_at=utcnow()))
        stored += 1
    return stored


def _store(engine: Engine, rollup: ProfileRollup) -> None:
    """Insert or replace the bucket's rollup (two replicas' compactors may race: the last one wins, both right)."""
    values = rollup.model_dump(exclude={"id"})
    with Session(writer(engine)) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        statement = insert(ProfileRollup.__table__).values(values)  # type: ignore[attr-defined]
        session.execute(statement.on_conflict_do_update(
            index_elements=["model_id", "bucket_start", "bucket_s"],
            set_={k: statement.excluded[k] for k in ("segments", "n_segments", "rows", "profile", "created_at")}))
        session.commit()
