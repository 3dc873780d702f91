"""Profile rollups (issue 15), on both databases: the compactor stores each closed bucket's merged profile, a window
merges it instead of the bucket's segment profiles and counts the same events, and a rollup that no longer names
the bucket's segments (a late segment, a compaction) is never used until the compactor replaces it."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.base import TS
from tests.watchtower.segstore_helpers import bound_to
from tests.watchtower.test_segment_profiles import T0, add_model, assert_same_counts, events, exact, write
from watchtower.events.models import ProfileRollup
from watchtower.events.segments import compact_all
from watchtower.events.segstore import binding, rollups
from watchtower.events.segstore.profiles import window_profile

BUCKET = timedelta(minutes=5)  # the default WATCHTOWER_PROFILE_BUCKET_S; T0 is on its grid


@pytest.fixture(params=["directory", "database"])
def store(request: pytest.FixtureRequest, db: Engine, tmp_path: Path) -> Iterator[binding.Segments]:
    location = str(tmp_path / "segments") if request.param == "directory" else "database"
    with bound_to(db, location) as segments:
        assert segments.bucket_s == BUCKET.total_seconds()
        yield segments


def fill(db: Engine, model: object, buckets: int, per_bucket: int = 3, rows: int = 40) -> pd.DataFrame:
    """`per_bucket` profiled segments in each of the first `buckets` buckets after T0; all their rows."""
    frames = []
    for b in range(buckets):
        for s in range(per_bucket):
            frame = events(rows, T0 + b * BUCKET + timedelta(seconds=60 * s), seed=100 * b + s)
            write(db, model, frame, profile=True)  # type: ignore[arg-type]
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def stored(db: Engine) -> list[ProfileRollup]:
    with Session(db) as session:
        return list(session.exec(select(ProfileRollup).order_by(col(ProfileRollup.bucket_start))).all())


def test_a_window_merges_bucket_rollups_and_counts_what_the_segments_count(db: Engine,
                                                                           store: binding.Segments) -> None:
    model = add_model(db)
    rows = fill(db, model, buckets=4)
    start, end = T0, T0 + 4 * BUCKET
    with Session(db) as session:
        before = window_profile(session, model, start, end)
    assert before.segments_rolled_up == 0 and before.segments_profiled == 12

    assert rollups.roll_up(db, model.id or 0, now=T0 + 4 * BUCKET) == 4
    assert [(r.n_segments, r.rows) for r in stored(db)] == [(3, 120)] * 4
    assert rollups.roll_up(db, model.id or 0, now=T0 + 4 * BUCKET) == 0  # all current: nothing to redo
    with Session(db) as session:
        after = window_profile(session, model, start, end)
    assert after.segments_rolled_up == 12 and after.segments_profiled == 12 and after.segments_read == 0
    assert_same_counts(after.profile, exact(model, rows))
    assert_same_counts(after.profile, before.profile)


def test_a_bucket_the_window_cuts_and_the_open_bucket_use_segment_profiles(db: Engine,
                                                                          store: binding.Segments) -> None:
    model = add_model(db)
    rows = fill(db, model, buckets=3)
    # At T0 + 2.5 buckets the third bucket is still open: the compactor leaves it alone.
    assert rollups.roll_up(db, model.id or 0, now=T0 + 2 * BUCKET + BUCKET / 2) == 2
    assert [r.bucket_start for r in stored(db)] == [T0, T0 + BUCKET]
    with Session(db) as session:  # starts a minute into the first bucket: only the second's rollup is whole
        cut = window_profile(session, model, T0 + timedelta(seconds=60), T0 + 3 * BUCKET)
    assert cut.segments_rolled_up == 3
    inside = rows[rows[TS] >= pd.Timestamp(T0 + timedelta(seconds=60))]
    assert_same_counts(cut.profile, exact(model, inside))


def test_a_late_segment_makes_its_buckets_rollup_stale_until_the_compactor_redoes_it(
        db: Engine, store: binding.Segments) -> None:
    model = add_model(db)
    rows = fill(db, model, buckets=2)
    assert rollups.roll_up(db, model.id or 0, now=T0 + 2 * BUCKET) == 2
    late = events(40, T0 + timedelta(seconds=200), seed=999)  # into the first bucket, after its rollup
    write(db, model, late, profile=True)
    with Session(db) as session:
        window = window_profile(session, model, T0, T0 + 2 * BUCKET)
    assert window.segments_rolled_up == 3  # the second bucket's only: the first one's names three segments of four
    assert_same_counts(window.profile, exact(model, pd.concat([rows, late], ignore_index=True)))

    assert rollups.roll_up(db, model.id or 0, now=T0 + 2 * BUCKET) == 1
    assert [(r.n_segments, r.rows) for r in stored(db)] == [(4, 160), (3, 120)]
    with Session(db) as session:
        again = window_profile(session, model, T0, T0 + 2 * BUCKET)
    assert again.segments_rolled_up == 7
    assert_same_counts(again.profile, window.profile)


def test_compaction_replaces_segments_and_rolls_their_bucket_up_again(db: Engine, store: binding.Segments) -> None:
    model = add_model(db)
    rows = fill(db, model, buckets=2)
    assert rollups.roll_up(db, model.id or 0, now=T0 + 2 * BUCKET) == 2
    compact_all(db)  # merges each bucket's three small segments into one, then rolls up what changed
    with Session(db) as session:
        window = window_profile(session, model, T0, T0 + 2 * BUCKET)
    # One segment per bucket now: a rollup of one is its segment's own profile, so none is kept or used.
    assert window.segments_profiled == 2 and window.segments_rolled_up == 0
    assert_same_counts(window.profile, exact(model, rows))


def test_the_compactor_deletes_rollups_older_than_it_keeps_up(db: Engine, store: binding.Segments) -> None:
    model = add_model(db)
    fill(db, model, buckets=1)
    assert rollups.roll_up(db, model.id or 0, now=T0 + BUCKET) == 1
    later = T0 + rollups.RECENT + timedelta(days=2)
    assert rollups.roll_up(db, model.id or 0, now=later) == 0
    assert stored(db) == []


def test_buckets_group_only_segments_lying_wholly_in_one() -> None:
    placed = [(1, T0, T0 + timedelta(seconds=10)), (2, T0 + timedelta(seconds=20), T0 + timedelta(seconds=30)),
              (3, T0 + BUCKET - timedelta(seconds=1), T0 + BUCKET + timedelta(seconds=1)),  # across the edge
              (4, T0 + BUCKET, T0 + BUCKET + timedelta(seconds=5)),  # alone in its bucket
              (5, T0 + 2 * BUCKET, T0 + 2 * BUCKET), (6, T0 + 2 * BUCKET + timedelta(seconds=9), T0 + 3 * BUCKET
                                                      - timedelta(microseconds=1))]
    assert rollups.by_bucket(placed, 300) == {T0: [1, 2], T0 + 2 * BUCKET: [5, 6]}
    assert rollups.by_bucket(placed, 300, T0, T0 + 3 * BUCKET - timedelta(seconds=1)) == {T0: [1, 2]}
    assert rollups.fingerprint([2, 1]) == rollups.fingerprint([1, 2]) != rollups.fingerprint([1, 2, 3])
