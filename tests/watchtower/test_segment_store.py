"""The segment store on both databases and every store: a directory, the database, and S3 (moto's server mode,
started here on a free port): round trips, the documented layout, column and time pruning, crash safety (the
orphan sweep) and compaction (bounded, concurrent with ingest, two compactors racing)."""

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.base import ERROR, ID, LATENCY, PREDICTION, TS
from tests.watchtower.segstore_helpers import FEATURES, T0, add_model, bound_to, events, moto_s3, s3_location
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.events.models import EventSegment
from watchtower.events.segments import add_segment, read_segments
from watchtower.events.segstore import binding, compaction, manifest
from watchtower.events.segstore.compaction import compact, plan, sweep
from watchtower.events.segstore.manifest import place, read, scan_sample
from watchtower.events.segstore.stores import INLINE_ROWS, FileStore, is_parquet

DAY = timedelta(days=1)
TENTH = timedelta(milliseconds=100)
SIZE = INLINE_ROWS  # the smallest segment that goes to the store's files (smaller ones stay in the manifest)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(params=["directory", "database", "s3"])
def store(request: pytest.FixtureRequest, db: Engine, tmp_path: Path) -> Iterator[binding.Segments]:
    """The test engine bound to one kind of store (a fresh directory or S3 prefix per test)."""
    if request.param == "directory":
        location = str(tmp_path / "segments")
    elif request.param == "database":
        location = "database"
    else:
        location = s3_location(request.getfixturevalue("s3_endpoint"), f"run-{uuid4().hex}")
    with bound_to(db, location) as segments:
        yield segments


def _write(engine: Engine, model_id: int, frame: pd.DataFrame) -> None:
    with Session(writer(engine)) as session:
        add_segment(session, model_id, frame)
        session.commit()


def _live(engine: Engine, model_id: int) -> list[EventSegment]:
    with Session(engine) as session:
        return list(session.exec(select(EventSegment).where(EventSegment.model_id == model_id,
                                                            col(EventSegment.retired_at).is_(None))).all())


def _read(engine: Engine, model_id: int, columns: list[str] | None = None) -> pd.DataFrame:
    with Session(engine) as session:
        return read_segments(session, model_id, T0 - DAY, T0 + 10 * DAY, columns)


def test_round_trip_keeps_every_value_and_type(db: Engine, store: binding.Segments) -> None:
    model_id = add_model(db)
    first, second = events(SIZE + 50, seed=1), events(SIZE + 30, start=T0 + DAY, seed=2)
    second[ERROR] = ["boom" if i % 3 == 0 else None for i in range(SIZE + 30)]  # one has errors, one has not
    _write(db, model_id, second)  # written out of order: reads come back oldest first
    _write(db, model_id, first)
    frame = _read(db, model_id)
    expected = pd.concat([first, second], ignore_index=True)
    assert frame[ID].tolist() == expected[ID].tolist()
    pd.testing.assert_frame_equal(frame[FEATURES + [PREDICTION, LATENCY]], expected[FEATURES + [PREDICTION, LATENCY]])
    assert frame[TS].tolist() == expected[TS].tolist()
    assert frame[ERROR].tolist() == expected[ERROR].tolist()
    segments = _live(db, model_id)
    assert sorted(s.n_rows for s in segments) == [SIZE + 30, SIZE + 50]
    assert all(s.n_bytes > 0 for s in segments)
    if isinstance(store.store, FileStore):  # the manifest names files; the database holds no bytes
        assert all(s.parquet is None and s.path is not None for s in segments)
    else:
        assert all(s.parquet is not None and s.path is None for s in segments)


def test_a_small_segment_stays_in_its_manifest_row_until_compaction_files_it(db: Engine,
                                                                            store: binding.Segments) -> None:
    model_id = add_model(db)
    small = [events(10, start=T0 + timedelta(seconds=20 * i), seed=i) for i in range(3)]
    small[1]["f_new"] = 2.5  # a feature added between two flushes
    for frame in small:
        _write(db, model_id, frame)
    segments = _live(db, model_id)
    # An Arrow IPC stream in the row, whatever the store: no file, object or Parquet set-up per flush.
    assert len(segments) == 3
    assert all(s.path is None and s.parquet is not None and not is_parquet(s.parquet) for s in segments)
    if isinstance(store.store, FileStore):
        assert store.store.files(utcnow() + DAY) == []
    expected = pd.concat(small, ignore_index=True)
    frame = _read(db, model_id)
    assert frame[ID].tolist() == expected[ID].tolist()
    pd.testing.assert_frame_equal(frame[FEATURES + [PREDICTION, LATENCY]], expected[FEATURES + [PREDICTION, LATENCY]])
    assert frame[TS].tolist() == expected[TS].tolist() and frame[ERROR].isna().all()
    with Session(db) as session:  # the window and the columns asked for, as from files
        window = read_segments(session, model_id, T0 + timedelta(seconds=25), T0 + timedelta(seconds=45), ["f_new"])
    assert list(window.columns) == [ID, TS, "f_new"]
    assert window[ID].tolist() == [f"e1-{i}" for i in range(5, 10)] + [f"e2-{i}" for i in range(5)]
    assert window["f_new"].tolist()[:5] == [2.5] * 5 and window["f_new"].iloc[5:].isna().all()
    assert compact(db, model_id) == 3  # into the store as Parquet, however few rows
    (merged,) = _live(db, model_id)
    if isinstance(store.store, FileStore):
        assert merged.parquet is None and merged.path is not None
        assert len(store.store.files(utcnow() + DAY)) == 1
    else:
        assert merged.parquet is not None and is_parquet(merged.parquet)
    pd.testing.assert_frame_equal(_read(db, model_id), frame)


def test_a_window_reads_text_as_object_columns_whatever_the_segments_mix(db: Engine, store: binding.Segments) -> None:
    """A window's text columns are decoded as dictionaries (Parquet) or encoded as such (inline segments) and come
    out as the object columns a plain read gives: str values, None for null, across both kinds of segment."""
    model_id = add_model(db)
    stored, inline = events(SIZE + 20, seed=1), events(7, start=T0 + DAY, seed=2)
    for i, frame in enumerate((stored, inline)):
        frame["color"] = [None if k % 4 == 0 else ("red", "green", "blue")[(k + i) % 3] for k in range(len(frame))]
        frame[ERROR] = ["timeout" if k % 5 == 1 else None for k in range(len(frame))]
    _write(db, model_id, stored)
    _write(db, model_id, inline)
    expected = pd.concat([stored, inline], ignore_index=True)
    with Session(db) as session:
        table = manifest.scan(session, model_id, T0 - DAY, T0 + 10 * DAY, [ID, TS, "color", ERROR, PREDICTION, "f1"])
        plain = read(session, [(s.id, s.path) for s in sorted(_live(db, model_id), key=lambda s: s.min_ts)],
                     [ID, TS, "color", ERROR, PREDICTION, "f1"])
    assert {table.schema.field(c).type for c in ("color", ERROR)} == {pa.dictionary(pa.int32(), pa.string())}
    assert pa.types.is_string(plain.schema.field("color").type)  # compaction and profiles read plain strings
    frame = manifest.to_frame(table)
    assert list(frame.columns) == [ID, TS, "color", ERROR, PREDICTION, "f1"]
    for column in ("color", ERROR):
        assert frame[column].dtype == object
        assert frame[column].tolist() == expected[column].tolist()
        assert {type(v) for v in frame[column]} <= {str, type(None)}
    pd.testing.assert_frame_equal(frame, manifest.to_frame(plain))  # as a read of plain strings gives


def test_segments_kept_in_the_database_are_fetched_in_batches_in_their_order(
        db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    model_id = add_model(db)
    frames = [events(3, start=T0 + timedelta(seconds=10 * i), seed=i) for i in range(7)]
    frames.insert(3, events(SIZE, start=T0 + timedelta(seconds=25), step=timedelta(milliseconds=10), seed=99))
    with bound_to(db, "database"):
        for frame in frames:
            _write(db, model_id, frame)
        segments = sorted(_live(db, model_id), key=lambda s: s.min_ts)
        assert [s.parquet is not None and is_parquet(s.parquet) for s in segments] == [False] * 3 + [True] + \
            [False] * 4
        # Cut by count, by bytes, and around a segment large enough to be read on its own.
        monkeypatch.setattr(manifest, "BLOB_BATCH_COUNT", 2)
        monkeypatch.setattr(manifest, "BLOB_ALONE_BYTES", segments[3].n_bytes)
        monkeypatch.setattr(manifest, "BLOB_BATCH_BYTES", 2 * segments[0].n_bytes + segments[1].n_bytes // 2)
        ids = [s.id for s in segments if s.id is not None]
        with Session(db) as session:
            assert manifest._blob_batches(session, ids) == [ids[0:2], ids[2:3], ids[3:4], ids[4:6], ids[6:8]]
        frame = _read(db, model_id, ["f1"])
    expected = pd.concat(frames, ignore_index=True).sort_values(TS, kind="stable", ignore_index=True)
    assert frame[ID].tolist() == expected[ID].tolist()
    assert frame["f1"].tolist() == expected["f1"].tolist()


def test_files_are_plain_parquet_partitioned_by_model_and_date(db: Engine, tmp_path: Path) -> None:
    model_id = add_model(db)
    with bound_to(db, str(tmp_path / "segments")):
        _write(db, model_id, events(SIZE))
        _write(db, model_id, events(SIZE, start=T0 + DAY, seed=3))
    files = sorted(tmp_path.glob("segments/**/*.parquet"))
    assert [f.parent.relative_to(tmp_path / "segments").as_posix() for f in files] == sorted(
        [f"model_id={model_id}/date=2026-11-27", f"model_id={model_id}/date=2026-11-28"])
    schema = pq.read_schema(files[0])  # any Parquet reader sees the documented columns and types
    assert {name: str(schema.field(name).type) for name in schema.names} == {
        **dict.fromkeys(FEATURES, "double"), ID: "string", TS: "timestamp[us, tz=UTC]", PREDICTION: "double",
        LATENCY: "double", ERROR: "string"}
    assert schema.metadata is None  # no pandas metadata: the schema is what is documented


def test_nanosecond_segments_of_older_releases_still_read_and_compact(db: Engine, store: binding.Segments) -> None:
    """Segments are written with microsecond times (Spark cannot read TIMESTAMP(NANOS)); files written before
    held nanoseconds, some with a sub-microsecond part: they read beside new ones, truncated to the microsecond,
    and compaction rewrites them as microseconds."""
    model_id = add_model(db)
    old = events(20, seed=1)
    old[TS] = old[TS] + pd.Timedelta(nanoseconds=789)  # only a nanosecond file can hold this
    table = pa.Table.from_pandas(old, preserve_index=False).replace_schema_metadata(None)
    assert table.schema.field(TS).type == pa.timestamp("ns", tz="UTC")
    with Session(writer(db)) as session:  # as an older release wrote it: no cast to microseconds
        segment = place(db, model_id, table)
        assert segment is not None
        session.add(segment)
        session.commit()
    new = events(10, start=T0 + timedelta(minutes=1), seed=2)
    _write(db, model_id, new)
    for _ in range(2):  # before and after compaction
        with Session(db) as session:  # the old event at T0 + 1 s + 789 ns reads as T0 + 1 s, inside the window
            frame = read_segments(session, model_id, T0 + timedelta(seconds=1), T0 + DAY, ["f0"])
        assert frame[TS].dtype == "datetime64[ns, UTC]"
        assert frame[TS].tolist() == [t.floor("us") for t in old[TS].iloc[1:]] + new[TS].tolist()
        assert frame["f0"].tolist() == old["f0"].iloc[1:].tolist() + new["f0"].tolist()
        assert compact(db, model_id) in (2, 0)
    with Session(db) as session:
        (merged,) = _live(db, model_id)
        assert read(session, [(merged.id, merged.path)]).schema.field(TS).type == pa.timestamp("us", tz="UTC")


def test_reads_only_the_asked_columns_and_the_window(db: Engine, store: binding.Segments) -> None:
    model_id = add_model(db)
    for day in range(3):
        _write(db, model_id, events(20, start=T0 + day * DAY, seed=day))
    late = events(5, start=T0 + 3 * DAY, seed=9)
    late["f_new"] = 1.5  # a feature added later: older segments lack it
    _write(db, model_id, late)
    with Session(db) as session:
        frame = read_segments(session, model_id, T0 + DAY, T0 + 3 * DAY + timedelta(seconds=2), ["f1", "f_new"])
    assert list(frame.columns) == [ID, TS, "f1", "f_new"]
    assert len(frame) == 20 + 20 + 2 and frame["f_new"].tolist()[-2:] == [1.5, 1.5]
    assert frame["f_new"].iloc[:-2].isna().all()
    assert frame[TS].min() == pd.Timestamp(T0 + DAY)
    assert frame[TS].max() == pd.Timestamp(T0 + 3 * DAY + timedelta(seconds=1))


def test_only_segments_crossing_an_edge_are_filtered_row_by_row(db: Engine, store: binding.Segments,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A window's scan filters only the segments that cross its edges (start inclusive, end exclusive: a segment
    whose last event is at the end crosses it), in their time order, and keeps exactly the events inside."""
    model_id = add_model(db)
    start, end = T0 + DAY, T0 + 3 * DAY
    parts = [events(INLINE_ROWS, start=start - timedelta(seconds=50), seed=1),  # crosses the start
             events(INLINE_ROWS, start=start + timedelta(seconds=50), seed=2),  # inside
             events(INLINE_ROWS, start=start + DAY, seed=3),  # inside
             events(INLINE_ROWS, start=end - timedelta(seconds=INLINE_ROWS - 1), seed=4),  # last event at the end
             events(5, start=end + DAY, seed=5)]  # after the window: not listed
    for part in parts:
        _write(db, model_id, part)
    filtered: list[bool] = []
    real_read = manifest.read

    def read_spy(session: Session, rows: list[tuple[int, str | None]], columns: manifest.Columns = None,
                 where: object = None, text_as_dictionary: bool = False) -> pa.Table:
        filtered.extend([where is not None] * len(rows))
        return real_read(session, rows, columns, where, text_as_dictionary)

    monkeypatch.setattr(manifest, "read", read_spy)
    with Session(db) as session:
        table = manifest.scan(session, model_id, start, end, [ID, TS, "f1"])
    assert filtered == [True, False, False, True]
    expected = pd.concat(parts[:4])
    expected = expected[(expected[TS] >= pd.Timestamp(start)) & (expected[TS] < pd.Timestamp(end))]
    assert table.column(ID).to_pylist() == expected[ID].tolist()
    assert table.num_rows == 50 + 2 * INLINE_ROWS + INLINE_ROWS - 1
    filtered.clear()  # a window starting at a segment's first event: that segment lies inside
    with Session(db) as session:
        table = manifest.scan(session, model_id, start + timedelta(seconds=50), end, [ID, TS])
    assert filtered == [False, False, True]
    assert table.num_rows == 2 * INLINE_ROWS + INLINE_ROWS - 1


def _corrupt_chunk(path: Path, row_group: int, column: str) -> None:
    """Overwrite one column chunk of one row group with garbage, keeping the footer (and its statistics)."""
    meta = pq.ParquetFile(path).metadata
    index = meta.schema.to_arrow_schema().get_field_index(column)
    chunk = meta.row_group(row_group).column(index)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    with path.open("r+b") as out:
        out.seek(start)
        out.write(b"\xff" * chunk.total_compressed_size)


def test_time_and_column_pruning_skip_row_groups_and_columns_unread(db: Engine, tmp_path: Path) -> None:
    """Proof that pruning happens in the reader: the chunks it must skip are garbage, and it still reads."""
    model_id = add_model(db)
    with bound_to(db, str(tmp_path / "segments")):
        frame = events(150_000, step=timedelta(milliseconds=10))  # three row groups of 65,536 rows, by time
        _write(db, model_id, frame)
        path = next(tmp_path.glob("segments/**/*.parquet"))
        assert pq.ParquetFile(path).metadata.num_row_groups == 3
        _corrupt_chunk(path, 0, "f0")  # the first row group's f0: outside the window read below
        _corrupt_chunk(path, 2, "f3")  # the last row group's f3: a column not asked for
        late = frame[TS].iloc[70_000].to_pydatetime()
        with Session(db) as session:
            window = read_segments(session, model_id, late, T0 + DAY, ["f0", "f1"])
        assert len(window) == 80_000 and window["f0"].tolist() == frame["f0"].iloc[70_000:].tolist()
        with pytest.raises(OSError), Session(db) as session:  # reading what was corrupted does fail
            read_segments(session, model_id, T0, T0 + DAY, ["f0"])


def test_a_rolled_back_batch_leaves_an_orphan_the_sweep_deletes_after_the_grace(db: Engine, tmp_path: Path) -> None:
    model_id = add_model(db)
    with bound_to(db, str(tmp_path / "segments"), grace_s=600) as segments:
        _write(db, model_id, events(SIZE))
        with Session(writer(db)) as session:
            add_segment(session, model_id, events(SIZE, seed=5))
            session.rollback()  # e.g. the idempotency insert failed: the file is written, its row is not
        files = set(tmp_path.glob("segments/**/*.parquet"))
        assert len(files) == 2 and len(_live(db, model_id)) == 1
        assert sweep(db) == 0  # young orphans stay: their transaction may still be committing
        assert sweep(db, now=utcnow() + timedelta(seconds=601)) == 1
        (kept,) = tmp_path.glob("segments/**/*.parquet")
        assert kept.relative_to(tmp_path / "segments").as_posix() == _live(db, model_id)[0].path
        assert len(_read(db, model_id)) == SIZE
        assert isinstance(segments.store, FileStore)


def test_compaction_keeps_old_files_for_readers_until_the_grace_passes(db: Engine, store: binding.Segments) -> None:
    model_id = add_model(db)
    for seed in range(4):
        _write(db, model_id, events(SIZE, start=T0 + timedelta(minutes=seed), seed=seed))
    before = _read(db, model_id)
    old = _live(db, model_id)
    assert compact(db, model_id) == 4
    with Session(db) as session:  # a reader that read the manifest before the swap still finds its segments
        stale = read(session, [(s.id, s.path) for s in old if s.id is not None])
    assert stale.num_rows == 4 * SIZE
    assert sweep(db, now=utcnow() + store.grace + timedelta(seconds=1)) == (4 if isinstance(store.store, FileStore)
                                                                             else 0)
    with Session(db) as session:
        assert len(session.exec(select(EventSegment).where(EventSegment.model_id == model_id)).all()) == 1
    after = _read(db, model_id)
    pd.testing.assert_frame_equal(before, after)


def test_plan_is_bounded_and_stays_within_a_bucket() -> None:
    small = [compaction.Small(i, None, 100, T0 + (i // 4) * timedelta(minutes=5)) for i in range(12)]
    groups = plan(small, target=250, budget=700)
    # 0-3 in one bucket, 4-7 in the next; the budget ends the plan before segment 7, and 6 alone is not merged
    assert [[s.id for s in g] for g in groups] == [[0, 1], [2, 3], [4, 5]]
    # Segments of a row each (the event writer's flushes) are merged some thousands at a time, not all at once.
    flushes = [compaction.Small(i, None, 1, T0) for i in range(2 * compaction.COMPACT_MAX_PARTS + 5)]
    assert [len(g) for g in plan(flushes, target=10**9, budget=10**9)] == [compaction.COMPACT_MAX_PARTS] * 2 + [5]


def test_incremental_compaction_interleaved_with_ingest_loses_and_doubles_nothing(
        db: Engine, store: binding.Segments) -> None:
    model_id = add_model(db)
    written: list[pd.DataFrame] = []
    stop, started = threading.Event(), threading.Event()

    def ingest() -> None:
        while not stop.is_set():
            n = len(written)
            frame = events(10, start=T0 + timedelta(seconds=n * 10), seed=n)
            _write(db, model_id, frame)
            written.append(frame)
            if n == 7:
                started.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        assert started.wait(timeout=60)
        runs = [compact(db, model_id, max_rows=40) for _ in range(6)]  # at most 40 rows read per run
    finally:
        stop.set()
        thread.join(timeout=120)
    assert runs[0] == 4 and max(runs) <= 4  # eight segments waited; the first run merged only four of them
    while compact(db, model_id, max_rows=40):
        pass
    frame = _read(db, model_id)
    expected = pd.concat(written)
    assert len(written) > 8 and sorted(frame[ID]) == sorted(expected[ID]) and frame[ID].is_unique
    assert frame["f2"].sum() == pytest.approx(expected["f2"].sum())


def test_two_compactors_racing_merge_each_segment_once(db: Engine, store: binding.Segments) -> None:
    model_id = add_model(db)
    for seed in range(6):
        _write(db, model_id, events(SIZE, start=T0 + timedelta(seconds=20 * seed), step=TENTH, seed=seed))
    with Session(db) as session:
        listed = session.exec(select(EventSegment).where(EventSegment.model_id == model_id)).all()
        stale = [compaction.Small(s.id, s.path, s.n_rows, compaction.bucket_start(s.min_ts, store.bucket_s))
                 for s in listed if s.id is not None]
    assert compact(db, model_id) == 6  # the other replica planned from the manifest before this swap
    assert compaction._merge(db, model_id, stale) == 0  # so its swap finds them retired and gives up
    if isinstance(store.store, FileStore):  # and its merged file was removed, not left behind
        assert len(store.store.files(utcnow() + DAY)) == 6 + 1
    for seed in range(6, 12):
        _write(db, model_id, events(SIZE, start=T0 + timedelta(seconds=20 * seed), step=TENTH, seed=seed))
    barrier = threading.Barrier(2)
    results: list[int] = []

    def race() -> None:
        barrier.wait()
        results.append(compact(db, model_id))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results) == [0, 7]  # the first merge and the six new segments, merged by exactly one of them
    frame = _read(db, model_id)
    assert len(frame) == 12 * SIZE and frame[ID].is_unique


def test_a_directory_store_is_the_default_beside_a_sqlite_file(tmp_path: Path) -> None:
    from watchtower.events.segstore.stores import DatabaseStore, open_store

    store = open_store(None, f"sqlite:///{tmp_path}/wt.db")
    assert isinstance(store, FileStore) and store.root == str(tmp_path / "watchtower-segments")
    assert isinstance(store.filesystem, pafs.LocalFileSystem)
    assert isinstance(open_store(None, "postgresql://u@h/db"), DatabaseStore)
    assert isinstance(open_store("database", f"sqlite:///{tmp_path}/wt.db"), DatabaseStore)


def test_a_drift_monitor_reads_its_features_and_nothing_else(db: Engine, store: binding.Segments) -> None:
    from watchtower.events.store import read_window
    from watchtower.registry.models import Monitor, MonitoredModel
    from watchtower.windows import window_columns

    model_id = add_model(db)
    _write(db, model_id, events(40))
    schema = dict.fromkeys(FEATURES, "numeric")
    drift = Monitor(model_id=model_id, name="drift", detectors=[{"name": "native_drift"},
                                                                {"name": "prediction_drift"}])
    assert window_columns(drift, schema) == [*FEATURES, PREDICTION]
    quality = Monitor(model_id=model_id, name="q", detectors=[{"name": "native_drift"}, {"name": "schema_check"}])
    assert window_columns(quality, schema) is None  # a schema check looks at every column
    with Session(db) as session:
        model = session.get(MonitoredModel, model_id)
        assert model is not None
        frame = read_window(session, model, T0, T0 + DAY, window_columns(drift, schema))
        everything = read_window(session, model, T0, T0 + DAY)
    assert list(frame.columns) == [TS, *FEATURES, PREDICTION] and len(frame) == 40
    assert {ID, LATENCY, ERROR, "__label__"} <= set(everything.columns)
    pd.testing.assert_frame_equal(frame, everything[frame.columns])


def test_compaction_never_merges_across_a_profile_bucket(db: Engine, store: binding.Segments) -> None:
    """Merged segments stay inside one WATCHTOWER_PROFILE_BUCKET_S bucket, so a profile-mode window whose edges
    sit on the grid reads no segment row by row; a small segment straddling an edge is left as it is."""
    model_id = add_model(db)
    edge = T0 + timedelta(seconds=store.bucket_s)
    for i in range(4):  # two segments before the bucket edge, two after
        _write(db, model_id, events(10, start=edge + timedelta(seconds=(i - 2) * 60), seed=i))
    _write(db, model_id, events(10, start=edge - timedelta(seconds=5), seed=9, tag="x"))  # across the edge
    assert compact(db, model_id) == 4
    with Session(db) as session:
        live = session.exec(select(EventSegment).where(EventSegment.model_id == model_id,
                                                       col(EventSegment.retired_at).is_(None))).all()
    spans = sorted((s.n_rows, compaction.bucket_start(s.min_ts, store.bucket_s) == compaction.bucket_start(
        s.max_ts, store.bucket_s)) for s in live)
    assert spans == [(10, False), (20, True), (20, True)]


@pytest.mark.parametrize("size", [SIZE, SIZE // 2])  # files (or Parquet bytes), and segments kept in their rows
def test_a_sample_of_a_window_spreads_over_its_segments_and_stays_inside_it(db: Engine, store: binding.Segments,
                                                                            size: int) -> None:
    model_id = add_model(db)
    for i in range(10):  # segment i holds events "s{i}-*", one a second from minute 10*i
        _write(db, model_id, events(size, start=T0 + timedelta(minutes=10 * i), seed=i, tag=f"s{i}-"))
    start, end = T0 + timedelta(seconds=30), T0 + timedelta(minutes=95)
    with Session(db) as session:
        sample = scan_sample(session, model_id, start, end, 150, ["f1"])
        whole = scan_sample(session, model_id, start, end, 10_000, ["f1"])
    assert whole.num_rows == 10 * size - 30  # fewer events than asked for: the window, read whole (30 cut at the start)
    ids = sample.column(ID).to_pylist()
    # About 150: each picked segment gives its share by its manifest count (the first one is cut by the start)
    assert 120 <= len(ids) <= 150 and len(ids) == len(set(ids)) and set(ids) <= set(whole.column(ID).to_pylist())
    assert len({i.split("-")[0] for i in ids}) >= 3  # spread over segments, not the first one only
    times = sample.column(TS).to_pylist()
    assert times == sorted(times) and min(times) >= start and max(times) < end
    assert set(sample.column_names) == {ID, TS, "f1"}


def test_a_file_is_synced_with_its_directory_and_any_directory_made_for_it(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut after the manifest row commits must not lose the file's name: fsync the file, the directory
    that names it and, when directories were made for it, each one's parent."""
    import os

    synced: list[str] = []
    real_fsync = os.fsync

    def recording(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording)
    store = FileStore.open(str(tmp_path / "segments"))
    table = pa.table({ID: ["a"], TS: pa.array([T0], pa.timestamp("us", tz="UTC"))})
    first = store.put(7, table, T0.date())
    day = tmp_path / "segments" / "model_id=7" / f"date={T0.date().isoformat()}"
    assert synced == [str(day / Path(first.path or "").name), str(day), str(tmp_path),
                      str(tmp_path / "segments"), str(tmp_path / "segments" / "model_id=7")]
    synced.clear()
    second = store.put(7, table, T0.date())
    assert synced == [str(day / Path(second.path or "").name), str(day)]  # nothing made: the file and its directory
    assert first.n_bytes == (day / Path(first.path or "").name).stat().st_size > 0
