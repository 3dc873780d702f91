"""When events were served, from the manifest and the segments' times (segstore/times.py), against the times
themselves: segments that overlap, share times, cross a range's edges or were retired by compaction."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.base import TS
from tests.watchtower.segstore_helpers import T0, add_model, bound_to, events
from watchtower.db import writer
from watchtower.events.models import EventSegment
from watchtower.events.segments import add_segment
from watchtower.events.segstore import times

SECOND = timedelta(seconds=1)


@pytest.fixture(params=["directory", "database"])
def location(request: pytest.FixtureRequest, db: Engine, tmp_path: Path) -> Iterator[None]:
    with bound_to(db, str(tmp_path / "segments") if request.param == "directory" else "database"):
        yield


def _segment(engine: Engine, model_id: int, offsets: list[int], tag: str) -> None:
    """One segment whose events were served `offsets` seconds after T0 (in any order, repeats allowed)."""
    frame = events(len(offsets), tag=tag)
    frame[TS] = pd.to_datetime([T0 + k * SECOND for k in offsets], utc=True)
    with Session(writer(engine)) as session:
        add_segment(session, model_id, frame)
        session.commit()


def _retire_first(engine: Engine, model_id: int) -> None:
    """Compaction's part that matters here: a retired segment's events no longer count."""
    with Session(writer(engine)) as session:
        first = session.exec(select(EventSegment).where(EventSegment.model_id == model_id)
                             .order_by(col(EventSegment.id))).first()
        assert first is not None
        first.retired_at = T0
        session.add(first)
        session.commit()


segments = st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=12), min_size=1, max_size=6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments, st.booleans(), st.integers(-2, 42), st.integers(0, 45), st.integers(1, 30), st.sampled_from([1, 16]))
def test_counts_firsts_and_nth_times_match_the_events(db: Engine, location: None, offsets: list[list[int]],
                                                      retire: bool, low: int, span: int, n: int, batch: int) -> None:
    """Read a segment at a time too: the n-th newest found so far may still be passed by a later segment."""
    with mock.patch.object(times, "MIN_BATCH", batch):
        _check(db, offsets, retire, low, span, n)


def _check(db: Engine, offsets: list[list[int]], retire: bool, low: int, span: int, n: int) -> None:
    model_id = add_model(db, f"times-{np.random.default_rng().integers(1 << 40)}")
    for k, part in enumerate(offsets):
        _segment(db, model_id, part, f"s{k}-")
    live = offsets[1:] if retire else offsets
    if retire:
        _retire_first(db, model_id)
    served = sorted(k for part in live for k in part)
    start, end = T0 + low * SECOND, T0 + (low + span) * SECOND
    inside = [k for k in served if low <= k < low + span]
    with Session(db) as session:
        assert times.count_between(session, model_id, start, end) == len(inside)
        assert times.first_between(session, model_id, start, end) == (
            T0 + inside[0] * SECOND if inside else None)
        newest = times.newest_nth(session, model_id, n)
        assert newest == ((T0 + served[-n] * SECOND, T0 + served[-1] * SECOND) if len(served) >= n else None)
        after = [k for k in served if k >= low]
        assert times.nth_from(session, model_id, start, n) == (T0 + after[n - 1] * SECOND if len(after) >= n
                                                               else None)


def test_the_nth_newest_reads_only_the_newest_segments(db: Engine, location: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A count window's bounds read the segments the answer can lie in, not every segment of the model."""
    model_id = add_model(db, "times-few-reads")
    for k in range(40):
        _segment(db, model_id, [10 * k + j for j in range(5)], f"r{k}-")
    read: list[int] = []
    real = times._times

    def counted(session: Session, listed: list[tuple[int, str | None]], where: object) -> np.ndarray:
        read.extend(i for i, _ in listed)
        return real(session, listed, where)

    monkeypatch.setattr(times, "_times", counted)
    with Session(db) as session:
        assert times.newest_nth(session, model_id, 7) == (T0 + 383 * SECOND, T0 + 394 * SECOND)
    assert 0 < len(read) <= times.MIN_BATCH


def test_none_served_gives_zero_and_none(db: Engine, location: None) -> None:
    model_id = add_model(db, "times-empty")
    with Session(db) as session:
        assert times.count_between(session, model_id, T0, T0 + SECOND) == 0
        assert times.first_between(session, model_id, T0, T0 + SECOND) is None
        assert times.newest_nth(session, model_id, 1) is None
        assert times.nth_from(session, model_id, T0, 1) is None


def test_ranges_past_what_pandas_holds_count_every_event(db: Engine, location: None) -> None:
    """Count windows ask from 1970 to the year 9999: beyond pandas' nanosecond range, as the scan clamps it."""
    model_id = add_model(db, "times-far")
    _segment(db, model_id, [0, 1, 1, 2], "far-")
    far = datetime(9999, 1, 1, tzinfo=T0.tzinfo)
    with Session(db) as session:
        assert times.count_between(session, model_id, datetime(1970, 1, 1, tzinfo=T0.tzinfo), far) == 4
        assert times.count_between(session, model_id, T0 + SECOND, far) == 3
