"""Mergeable profiles on the storage side (issue 15), on both databases: a segment's profile written after its
flush and by compaction, a window's profile counting every event once across segment edges, posted profiles
(counted only inside a window; POST validation), a crash between commit and profile, the reference profile."""

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.metrics import Metrics
from detectors.base import ERROR, ID, LATENCY, PREDICTION, PROBA_PREFIX, TS
from detectors.sketches.compare import ks
from detectors.sketches.profile import Profile, profile_frame
from tests import factories
from tests.factories import BuiltModels
from tests.watchtower.segstore_helpers import bound_to
from watchtower.db import writer
from watchtower.events.frames import KEY_COLUMNS
from watchtower.events.models import EventSegment, PostedProfile
from watchtower.events.segments import add_segment, compact
from watchtower.events.segstore import binding, profiles
from watchtower.events.segstore.manifest import AHEAD_ROWS
from watchtower.events.segstore.profiles import profile_schema, reference_profile, window_profile
from watchtower.events.writer import EventWriter
from watchtower.registry.models import MonitoredModel, Pipeline, ReferenceData
from watchtower.settings import Settings

T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
NUMERIC, COLORS = ["x0", "x1", "x2"], ["red", "green", "blue", "cyan"]
FEATURES = [*({"name": f, "type": "numeric"} for f in NUMERIC), {"name": "color", "type": "categorical"}]


@pytest.fixture(params=["directory", "database"])
def store(request: pytest.FixtureRequest, db: Engine, tmp_path: Path) -> Iterator[binding.Segments]:
    location = str(tmp_path / "segments") if request.param == "directory" else "database"
    with bound_to(db, location) as segments:
        yield segments


def add_model(engine: Engine, name: str = "profiled") -> MonitoredModel:
    """A classifier row with three numeric features and a categorical one (no ONNX: events go to the store)."""
    with Session(writer(engine)) as session:
        pipeline = Pipeline(name=f"{name}-etl")
        session.add(pipeline)
        session.flush()
        model = MonitoredModel(name=name, task="classification", input_style="named", output_kind="label",
                               pipeline_id=pipeline.id, features=FEATURES)
        session.add(model)
        session.commit()
        session.refresh(model)
        session.expunge(model)
        return model


def events(n: int, start: datetime, step: timedelta = timedelta(seconds=1), seed: int = 0) -> pd.DataFrame:
    """n events as insert_frame stores them: typed features (some missing), class predictions, probabilities."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.normal(size=n) for f in NUMERIC})
    frame.loc[frame.index % 17 == 3, "x1"] = np.nan
    frame["color"] = pd.Series(rng.choice(COLORS, size=n), dtype=object).where(frame.index % 11 != 5, None)
    frame[ID] = [f"e{seed}-{i}" for i in range(n)]
    frame[TS] = pd.to_datetime([start + i * step for i in range(n)], utc=True).astype("datetime64[ns, UTC]")
    frame[PREDICTION] = pd.Series(rng.choice(["0", "1"], size=n), dtype=object)
    frame[f"{PROBA_PREFIX}1"] = rng.uniform(size=n)
    frame[f"{PROBA_PREFIX}0"] = 1 - frame[f"{PROBA_PREFIX}1"]
    frame[LATENCY] = rng.uniform(1, 5, size=n)
    frame[ERROR] = pd.Series([None] * n, dtype=object)
    return frame


def write(engine: Engine, model: MonitoredModel, frame: pd.DataFrame, *, profile: bool) -> int:
    """One segment, committed; with `profile`, profiled after the commit as the event writer does."""
    with Session(writer(engine)) as session:
        add_segment(session, model.id or 0, frame)
        written = profiles.written(session)
        session.commit()
    if profile:
        assert profiles.profile_written(engine, model, written, min_rows=1) == 1
    return written[0][0]


def exact(model: MonitoredModel, frame: pd.DataFrame) -> Profile:
    schema = profile_schema(model, frame.columns)
    return profile_frame(frame, schema)


def assert_same_counts(got: Profile, want: Profile) -> None:
    """Rows and every column's counts equal; numeric sketches within their stated bound of each other."""
    assert got.rows == want.rows
    assert set(got.numeric) == set(want.numeric) and set(got.categorical) == set(want.categorical)
    for name, sketch in want.numeric.items():
        mine = got.numeric[name]
        assert (mine.count, mine.missing, mine.non_finite) == (sketch.count, sketch.missing, sketch.non_finite), name
        assert mine.total == pytest.approx(sketch.total) and mine.minimum == sketch.minimum, name
        if sketch.count:
            result = ks(mine, sketch)
            assert result.d <= result.bound, name
    for name, counts in want.categorical.items():
        assert dict(got.categorical[name].counts) == dict(counts.counts), name
        assert got.categorical[name].missing == counts.missing, name


def window(engine: Engine, model: MonitoredModel, start: datetime, end: datetime) -> profiles.WindowProfile:
    with Session(engine) as session:
        return window_profile(session, model, start, end)


def within(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    ts = frame[TS]
    return frame[(ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end))]


def test_the_writer_profiles_segments_after_answering_and_skips_tiny_ones(db: Engine, store: binding.Segments,
                                                                           settings: Settings) -> None:
    model = add_model(db)
    big, tiny = events(1500, T0, seed=1), events(5, T0 + timedelta(hours=2), seed=2)
    for frame in (big, tiny):
        frame["version"], frame["received_at"] = None, pd.Timestamp(T0)
    event_writer = EventWriter(db, settings.model_copy(update={"profile_min_rows": 1000}), Metrics())
    event_writer.start()
    try:
        assert event_writer.write(model, big, durable=True) == 1500
        assert event_writer.write(model, tiny, durable=True) == 5
    finally:
        event_writer.stop()
    with Session(db) as session:
        stored = dict(session.exec(select(EventSegment.n_rows, EventSegment.profile)
                                   .where(EventSegment.model_id == model.id)).all())
    assert stored[5] is None  # under WATCHTOWER_PROFILE_MIN_ROWS: read exactly until compaction
    assert stored[1500] is not None
    profile = Profile.from_bytes(stored[1500])
    assert profile.k == store.profile_k and profile.numeric["x0"].k == 1024
    assert_same_counts(profile, exact(model, big.drop(columns=[ID, LATENCY, ERROR, *KEY_COLUMNS])))
    assert profile.categorical[PREDICTION].counts.keys() == {"0", "1"}  # a classifier's prediction is categorical


def test_a_crash_between_commit_and_profile_leaves_null_and_the_window_reads_it_exactly(
        db: Engine, store: binding.Segments, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    model = add_model(db)
    n = AHEAD_ROWS - 100  # a larger segment is profiled ahead, in its own transaction (the test after this one)
    frame = events(n, T0, seed=3)
    frame["version"], frame["received_at"] = None, pd.Timestamp(T0)

    def crash(*_: Any) -> int:
        raise RuntimeError("killed after the commit")

    monkeypatch.setattr(profiles, "profile_written", crash)
    event_writer = EventWriter(db, settings.model_copy(update={"profile_min_rows": 1}), Metrics())
    event_writer.start()
    try:
        assert event_writer.write(model, frame, durable=True) == n  # the answer does not depend on profiling
    finally:
        event_writer.stop()
    with Session(db) as session:
        assert session.exec(select(EventSegment.profile).where(EventSegment.model_id == model.id)).all() == [None]
    result = window(db, model, T0, T0 + timedelta(hours=1))
    assert (result.segments_profiled, result.segments_read, result.rows_read) == (0, 1, n)
    assert_same_counts(result.profile, exact(model, frame.drop(columns=[ID, LATENCY, ERROR, *KEY_COLUMNS])))
    assert "profiling event segment" in caplog.text and "killed after the commit" in caplog.text


def test_a_large_segment_commits_with_its_profile_and_a_failed_profile_still_stores_the_events(
        db: Engine, store: binding.Segments, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    model = add_model(db)
    big, other = events(AHEAD_ROWS + 200, T0, seed=4), events(AHEAD_ROWS, T0 + timedelta(hours=2), seed=5)
    for frame in (big, other):
        frame["version"], frame["received_at"] = None, pd.Timestamp(T0)

    def crash(*_: Any) -> int:
        raise RuntimeError("no profile after the commit")

    monkeypatch.setattr(profiles, "profile_written", crash)  # the big segment needs none: it came with its rows
    event_writer = EventWriter(db, settings.model_copy(update={"profile_min_rows": 1}), Metrics())
    event_writer.start()
    try:
        assert event_writer.write(model, big, durable=True) == len(big)
        monkeypatch.setattr(Profile, "to_bytes", lambda _: 1 / 0)  # profiling ahead fails: rows still stored
        assert event_writer.write(model, other, durable=True) == len(other)
    finally:
        event_writer.stop()
    with Session(db) as session:
        stored = dict(session.exec(select(EventSegment.n_rows, EventSegment.profile)
                                   .where(EventSegment.model_id == model.id)).all())
    assert stored[len(other)] is None and "profiling an event segment ahead failed" in caplog.text
    assert_same_counts(Profile.from_bytes(stored[len(big)]),
                       exact(model, big.drop(columns=[ID, LATENCY, ERROR, *KEY_COLUMNS])))
    assert "no profile after the commit" in caplog.text  # the writer tried the failed one after its commit


def test_compaction_stores_the_merge_of_the_parts_profiles(db: Engine, store: binding.Segments) -> None:
    model = add_model(db)
    # All five inside one profile bucket (5 min): compaction merges only within a bucket.
    frames = [events(300 + 50 * i, T0 + timedelta(seconds=55 * i), timedelta(milliseconds=100), seed=10 + i)
              for i in range(5)]
    for i, frame in enumerate(frames):
        write(db, model, frame, profile=i % 2 == 0)  # two parts have no profile: profiled from their rows
    assert compact(db, model.id or 0) == 5
    with Session(db) as session:
        (merged,) = session.exec(select(EventSegment).where(EventSegment.model_id == model.id,
                                                            col(EventSegment.retired_at).is_(None))).all()
    assert merged.profile is not None
    rows = pd.concat(frames, ignore_index=True).drop(columns=[ID, LATENCY, ERROR])
    assert_same_counts(Profile.from_bytes(merged.profile), exact(model, rows))
    result = window(db, model, T0, T0 + timedelta(days=1))  # the merged segment lies inside: its profile is used
    assert (result.segments_profiled, result.segments_read, result.rows_read) == (1, 0, 0)
    assert result.rows == len(rows)


def test_a_window_crossing_segment_edges_counts_each_event_once(db: Engine, store: binding.Segments) -> None:
    model = add_model(db)
    frames = [events(600, T0 + timedelta(minutes=20 * i), seed=20 + i) for i in range(6)]  # 10 min each
    for i, frame in enumerate(frames):
        write(db, model, frame, profile=i != 3)
    everything = pd.concat(frames, ignore_index=True).drop(columns=[ID, LATENCY, ERROR])
    # Cuts through segment 1 and segment 4; segments 2 and 3 lie inside (3 has no profile).
    start, end = T0 + timedelta(minutes=25), T0 + timedelta(minutes=85, seconds=30)
    result = window(db, model, start, end)
    inside = within(everything, start, end)
    assert result.rows == len(inside) == 300 + 600 + 600 + 330
    assert (result.segments_profiled, result.segments_read) == (1, 3)
    assert result.rows_read == 300 + 600 + 330
    assert_same_counts(result.profile, exact(model, inside))
    # Bounds that fall exactly on events: start inclusive, end exclusive.
    first, last = frames[2][TS].iloc[0].to_pydatetime(), frames[2][TS].iloc[-1].to_pydatetime()
    assert window(db, model, first, last).rows == 599
    assert window(db, model, first, last + timedelta(microseconds=1)).segments_profiled == 1


def test_posted_profiles_count_only_when_inside_the_window(db: Engine, store: binding.Segments) -> None:
    model = add_model(db)
    write(db, model, events(400, T0, seed=30), profile=True)
    lake = events(1000, T0 + timedelta(hours=3), seed=31).drop(columns=[ID, LATENCY, ERROR])
    crossing = events(700, T0 + timedelta(hours=5), seed=32).drop(columns=[ID, LATENCY, ERROR])
    with Session(writer(db)) as session:
        for frame, low, high in ((lake, 3, 4), (crossing, 5, 7)):
            session.add(PostedProfile(model_id=model.id or 0, start=T0 + timedelta(hours=low),
                                      end=T0 + timedelta(hours=high), rows=len(frame),
                                      profile=exact(model, frame).to_bytes(), source="spark"))
        session.commit()
    result = window(db, model, T0, T0 + timedelta(hours=6))
    assert result.rows == 400 + 1000 and len(result.posted_used) == 1
    (left_out,) = result.posted_left_out
    assert (left_out.rows, left_out.start, left_out.end) == (700, T0 + timedelta(hours=5), T0 + timedelta(hours=7))
    colors = [exact(model, f).categorical["color"].count for f in (lake, events(400, T0, seed=30))]
    assert result.profile.categorical["color"].count == sum(colors)
    assert window(db, model, T0, T0 + timedelta(hours=8)).rows == 400 + 1000 + 700
    assert window(db, model, T0 + timedelta(hours=3, minutes=1), T0 + timedelta(hours=8)).rows == 700


def test_a_window_of_a_feature_added_later_counts_older_events_as_missing(db: Engine, store: binding.Segments
                                                                          ) -> None:
    model = add_model(db)
    write(db, model, events(500, T0, seed=40), profile=True)
    with Session(writer(db)) as session:
        stored = session.get(MonitoredModel, model.id)
        assert stored is not None
        stored.features = [*FEATURES[:1], *FEATURES[2:], {"name": "x9", "type": "numeric"}]  # x1 gone, x9 new
        session.add(stored)
        session.commit()
        session.refresh(stored)
        session.expunge(stored)
    result = window(db, stored, T0, T0 + timedelta(hours=1))
    assert "x1" not in result.profile.numeric
    assert result.profile.numeric["x9"].missing == 500 and result.profile.numeric["x9"].count == 0


def test_the_reference_profile_is_stored_at_registration_computed_lazily_and_posted_ones_win(
        client: TestClient, db: Engine, models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    with Session(db) as session:
        model = session.exec(select(MonitoredModel).where(MonitoredModel.name == "churn")).one()
        reference = session.exec(select(ReferenceData).where(ReferenceData.model_id == model.id)).one()
        assert reference.sketch is not None
        at_registration = Profile.from_bytes(reference.sketch)
        frame = pd.read_parquet(io.BytesIO(reference.parquet))
    assert at_registration.rows == len(frame) and set(at_registration.numeric) >= set(factories.NUMERIC)
    assert set(at_registration.categorical) == {PREDICTION, "__label__"}  # a classifier's outcome columns
    assert any(n.startswith(PROBA_PREFIX) for n in at_registration.numeric)
    with Session(writer(db)) as session:  # a row stored before sketches existed
        row = session.get(ReferenceData, reference.id)
        assert row is not None
        row.sketch = None
        session.add(row)
        session.commit()
    with Session(db) as session:
        lazily = reference_profile(session, model)
    assert_same_counts(lazily, at_registration)
    with Session(db) as session:  # and kept for the next use
        assert session.exec(select(ReferenceData.sketch).where(ReferenceData.id == reference.id)).one() is not None
    posted = profile_frame(frame[factories.NUMERIC].iloc[:10], dict.fromkeys(factories.NUMERIC, "numeric"))
    response = client.post("/models/churn/profiles", json={"profile": posted.to_json(),
                                                           "reference": True, "source": "spark"})
    assert response.status_code == 201, response.text
    assert response.json()["reference"] is True and response.json()["start"] is None
    with Session(db) as session:
        assert reference_profile(session, model).rows == 10  # newer than the reference data: it wins


def _body(model: MonitoredModel, frame: pd.DataFrame, **changes: Any) -> dict[str, Any]:
    return {"start": "2026-11-27T00:00:00Z", "end": "2026-11-27T01:00:00+00:00",
            "profile": exact(model, frame).to_json(), "source": "spark", **changes}


def test_post_profiles_validates_and_lists(client: TestClient, db: Engine) -> None:
    model = add_model(db, "lake")
    frame = events(200, T0, seed=50).drop(columns=[ID, LATENCY, ERROR])
    response = client.post("/models/lake/profiles", json=_body(model, frame))
    assert response.status_code == 201, response.text
    posted = response.json()
    assert posted["rows"] == 200 and posted["reference"] is False
    assert posted["start"].startswith("2026-11-27T00:00:00") and posted["end"].startswith("2026-11-27T01:00:00")
    listed = client.get("/models/lake/profiles").json()
    assert [(p["id"], p["rows"], p["source"]) for p in listed] == [(posted["id"], 200, "spark")]
    assert "profile" not in listed[0] and listed[0]["created_by"]
    with Session(db) as session:
        assert window_profile(session, model, T0, T0 + timedelta(hours=1)).posted_used == (posted["id"],)

    def refused(body: dict[str, Any]) -> list[str]:
        answer = client.post("/models/lake/profiles", json=body)
        assert answer.status_code == 422, answer.text
        return [e["field"] for e in answer.json()["errors"]]

    good = _body(model, frame)
    assert refused({**good, "end": "2026-11-27T00:00:00Z"}) == ["body.end"]
    assert refused({**good, "start": None}) == ["body.start"]
    assert refused({**good, "profile": {**good["profile"], "version": 9}}) == ["body.profile"]
    assert refused({**good, "profile": {"version": 1}}) == ["body.profile"]
    renamed = {**good["profile"], "numeric": {"nope": good["profile"]["numeric"]["x0"]}}
    assert refused({**good, "profile": renamed}) == ["body.profile.numeric.nope"]
    wrong_kind = {**good["profile"], "numeric": {"color": good["profile"]["numeric"]["x0"]}}
    assert refused({**good, "profile": wrong_kind}) == ["body.profile.numeric.color"]
    broken = json.loads(json.dumps(good["profile"]))
    broken["numeric"]["x0"]["sketch"] = "Z2FyYmFnZTEyMzQ1Njc4"  # base64 of garbage
    assert refused({**good, "profile": broken}) == ["body.profile.numeric.x0.sketch"]
    short = json.loads(json.dumps(good["profile"]))
    short["rows"] = 150
    assert set(refused({**good, "profile": short})) == {f"body.profile.numeric.{n}" for n in short["numeric"]} | {
        f"body.profile.categorical.{n}" for n in short["categorical"]}
    assert client.post("/models/nosuch/profiles", json=good).status_code == 404
    with Session(db) as session:
        assert len(session.exec(select(PostedProfile)).all()) == 1  # nothing refused was stored


def test_posted_sketches_of_another_k_are_accepted_and_merge(client: TestClient, db: Engine,
                                                             store: binding.Segments) -> None:
    model = add_model(db, "smallk")
    write(db, model, events(300, T0, seed=60), profile=True)
    frame = events(500, T0 + timedelta(minutes=30), seed=61).drop(columns=[ID, LATENCY, ERROR])
    small_k = profile_frame(frame, profile_schema(model, frame.columns), k=200)
    response = client.post("/models/smallk/profiles", json={
        "start": "2026-11-27T00:30:00Z", "end": "2026-11-27T00:45:00Z", "profile": small_k.to_json()})
    assert response.status_code == 201, response.text
    result = window(db, model, T0, T0 + timedelta(hours=1))
    assert result.rows == 800
    merged = result.profile.numeric["x0"]
    assert merged.count == 800 and merged.rank_error >= small_k.numeric["x0"].rank_error  # the smaller k bounds it
