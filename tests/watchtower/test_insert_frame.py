"""insert_frame: the columnar write of events (keys by COPY on PostgreSQL, one INSERT on SQLite; one segment)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from detectors.base import ERROR, ID, LATENCY, PREDICTION, PROBA_PREFIX, TS
from tests import factories
from tests.factories import BuiltModels
from watchtower.db import writer
from watchtower.events.frames import VERSION, event_frame, utc_times
from watchtower.events.keys import SMALL_KEYS
from watchtower.events.models import EventSegment, ServingEvent
from watchtower.events.segstore.binding import bound
from watchtower.events.segstore.manifest import AHEAD_ROWS
from watchtower.events.segstore.stores import FileStore
from watchtower.events.segstore.times import count_between
from watchtower.events.store import insert_events, insert_frame, read_window
from watchtower.registry.models import MonitoredModel

T0 = datetime(2026, 11, 2, 8, 30, 0, 123456, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def churn(client: TestClient, models: BuiltModels) -> str:
    factories.register_tensor(client, models)
    return "churn"


def frame(ids: list[str], task: str = "classification", features: dict[str, Any] | None = None,
          predictions: list[Any] | None = None, scores: list[dict[str, float] | None] | None = None,
          seconds: list[int] | None = None, version: str | None = "v1") -> pd.DataFrame:
    """An insert_frame frame for the tensor model (f1..f4 = the row's position unless given)."""
    n = len(ids)
    times = [T0 + timedelta(seconds=s) for s in (seconds or range(n))]
    features = features or {f: np.arange(n, dtype=float) + k / 10 for k, f in enumerate(factories.NUMERIC)}
    return event_frame(ids, utc_times(times, default=T0), features, predictions or [1] * n, task,
                       latency=[1.5] * n, errors=[None] * n, scores=scores, versions=[version] * n,
                       received_at=RECEIVED)


def store(engine: Engine, name: str, data: pd.DataFrame) -> np.ndarray:
    with Session(writer(engine)) as session:
        new = insert_frame(session, model(session, name), data)
        session.commit()
    return new


def model(session: Session, name: str) -> MonitoredModel:
    return session.exec(select(MonitoredModel).where(MonitoredModel.name == name)).one()


def window(engine: Engine, name: str) -> pd.DataFrame:
    with Session(engine) as session:
        return read_window(session, model(session, name), T0 - timedelta(days=1), T0 + timedelta(days=1))


def test_first_row_of_an_id_wins_within_a_frame_and_across_frames(churn: str, db: Engine) -> None:
    first = frame(["a", "b", "a", "c", "b"])
    assert store(db, churn, first).tolist() == [True, True, False, True, False]
    assert store(db, churn, first).tolist() == [False] * 5  # a resend stores nothing
    second = frame(["c", "d", "d", "e"], seconds=[10, 11, 12, 13])
    assert store(db, churn, second).tolist() == [False, True, False, True]
    stored = window(db, churn).set_index(ID)
    assert sorted(stored.index) == ["a", "b", "c", "d", "e"]
    # The values of each id are those of its first row: a at position 0, d at position 1 of its frame.
    assert stored.loc["a", "f1"] == 0.0 and stored.loc["b", "f1"] == 1.0 and stored.loc["c", "f1"] == 3.0
    assert stored.loc["d", "f1"] == 1.0 and stored.loc["d", TS] == T0 + timedelta(seconds=11)
    with Session(db) as session:
        assert len(session.exec(select(ServingEvent)).all()) == 5
        assert [s.n_rows for s in session.exec(select(EventSegment).order_by(col(EventSegment.id)))] == [3, 2]


def test_the_key_row_holds_time_version_and_arrival_exactly(churn: str, db: Engine) -> None:
    store(db, churn, frame([f"e{i}" for i in range(6)], version="primary-v3"))
    with Session(db) as session:
        keys = session.exec(select(ServingEvent).order_by(col(ServingEvent.ts))).all()
        churn_id = model(session, churn).id
        assert churn_id is not None
        # Bounds compare with the stored times on both databases, to the microsecond.
        assert count_between(session, churn_id, T0 + timedelta(seconds=1), T0 + timedelta(seconds=4)) == 3
        assert count_between(session, churn_id, T0, T0 + timedelta(microseconds=1)) == 1
    assert [k.ts for k in keys] == [T0 + timedelta(seconds=i) for i in range(6)]
    assert {(k.version, k.received_at) for k in keys} == {("primary-v3", RECEIVED)}


def test_null_nan_and_categories_round_trip(mixed: str, db: Engine) -> None:
    colors = ["red", None, "", "zöe \"quoted\", comma\nnewline", "red"]
    data = frame([f"m{i}" for i in range(5)], features={
        "f1": np.array([0.5, -1.0, 1e300, 0.0, 2.0]), "f2": np.array([np.nan, 1.0, np.nan, 3.0, 4.0]),
        "color": np.array(colors, dtype=object)})
    assert store(db, mixed, data).all()
    stored = window(db, mixed).sort_values(ID).reset_index(drop=True)
    assert stored["f1"].tolist() == [0.5, -1.0, 1e300, 0.0, 2.0]
    assert stored["f2"].isna().tolist() == [True, False, True, False, False]
    assert stored["color"].tolist() == colors
    assert stored[LATENCY].tolist() == [1.5] * 5 and stored[ERROR].isna().all()


def test_classification_and_regression_predictions(churn: str, client: TestClient, models: BuiltModels,
                                                   db: Engine) -> None:
    spec = factories.tensor_spec("price", task="regression")
    assert factories.register(client, spec, models.regressor, models.regressor, models.reference).status_code == 201
    store(db, churn, frame(["i", "f", "s", "b", "n"], predictions=[1, 2.0, "yes", True, None]))
    store(db, "price", frame(["r1", "r2", "r3"], task="regression", predictions=[1.25, 3, None]))
    classes = window(db, churn).set_index(ID)[PREDICTION]
    assert classes.to_dict() == {"i": "1", "f": "2", "s": "yes", "b": "true", "n": None}
    values = window(db, "price").set_index(ID)[PREDICTION]
    assert values.dtype == float and values[["r1", "r2"]].tolist() == [1.25, 3.0] and np.isnan(values["r3"])


def test_probability_columns_appear_with_later_batches(churn: str, db: Engine) -> None:
    store(db, churn, frame(["p0", "p1"]))
    store(db, churn, frame(["p2", "p3"], scores=[{"0": 0.25, "1": 0.75}, None], seconds=[2, 3]))
    store(db, churn, frame(["p4"], scores=[{"0": 0.1, "1": 0.2, "2": 0.7}], seconds=[4]))
    stored = window(db, churn).set_index(ID)
    proba = [f"{PROBA_PREFIX}{c}" for c in "012"]
    assert set(proba) <= set(stored.columns)
    assert stored.loc["p2", proba[:2]].tolist() == [0.25, 0.75] and np.isnan(stored.loc["p2", proba[2]])
    assert stored.loc["p4", proba].tolist() == [0.1, 0.2, 0.7]
    assert stored.loc[["p0", "p1", "p3"], proba].isna().all().all()


def test_a_large_batch_is_written_while_its_keys_go_in_and_a_resent_one_leaves_no_stray_file(
        churn: str, db: Engine) -> None:
    n = AHEAD_ROWS + 10
    ids = [f"big{i}" for i in range(n)]
    assert store(db, churn, frame(ids)).all()
    files = bound(db).store
    before = set(files.files(datetime.now(UTC) + timedelta(days=1))) if isinstance(files, FileStore) else set()
    # Resent with ten new ids: the segment written ahead (every row) is dropped, and only the new rows are stored.
    resent = ids[10:] + [f"new{i}" for i in range(10)]
    assert store(db, churn, frame(resent, seconds=list(range(100, 100 + n)))).tolist() == [False] * (n - 10) + [
        True] * 10
    stored = window(db, churn).set_index(ID)
    assert len(stored) == n + 10 and stored.loc["big5", TS] == T0 + timedelta(seconds=5)
    with Session(db) as session:
        segments = session.exec(select(EventSegment).order_by(col(EventSegment.id))).all()
        assert [s.n_rows for s in segments] == [n, 10]
        assert session.exec(select(func.count()).select_from(ServingEvent)).one() == n + 10
    if isinstance(files, FileStore):  # the file written ahead is gone; the ten new rows stay in their manifest row
        assert set(files.files(datetime.now(UTC) + timedelta(days=1))) == before
        assert segments[1].path is None and segments[1].parquet is not None


def test_batches_in_one_transaction_and_a_rollback(churn: str, mixed: str, db: Engine) -> None:
    mixed_features = {"f1": np.ones(2), "f2": np.ones(2), "color": np.array(["red", "red"], dtype=object)}
    with Session(writer(db)) as session:
        churn_model = model(session, churn)
        assert insert_frame(session, churn_model, frame(["x", "y"])).tolist() == [True, True]
        # Later batches of the same transaction (a group commit) see the earlier keys, never their leftovers.
        assert insert_frame(session, churn_model, frame(["y", "z"])).tolist() == [False, True]
        assert insert_frame(session, model(session, mixed), frame(["q", "x"], features=mixed_features)).all()
        session.rollback()
        assert insert_frame(session, churn_model, frame(["z", "x"])).tolist() == [True, True]
        assert insert_frame(session, model(session, mixed), frame(["x", "x"], features=mixed_features)).tolist() == [
            True, False]
        session.commit()
    assert sorted(window(db, churn)[ID]) == ["x", "z"] and window(db, mixed)[ID].tolist() == ["x"]
    with Session(db) as session:
        assert len(session.exec(select(ServingEvent)).all()) == 3


def test_ids_awkward_for_csv_and_the_session_time_zone(churn: str, db: Engine) -> None:
    ids = ['with,comma', 'with"quote', "with\nnewline", "with\\backslash", "tab\there", "ünïcødé ✓", " ", "\\N"]
    with Session(writer(db)) as session:
        if db.dialect.name == "postgresql":  # times reach PostgreSQL as text: they must not be read as local
            session.execute(text("SET TIME ZONE 'America/New_York'"))
        assert insert_frame(session, model(session, churn), frame(ids)).all()
        session.commit()
    stored = window(db, churn).sort_values(TS)
    assert stored[ID].tolist() == ids
    assert stored[TS].tolist() == [T0 + timedelta(seconds=i) for i in range(len(ids))]
    with Session(db) as session:
        keys = session.exec(select(ServingEvent.event_id, ServingEvent.ts).order_by(col(ServingEvent.ts))).all()
    assert keys == [(i, T0 + timedelta(seconds=k)) for k, i in enumerate(ids)]


def test_key_rows_of_one_version_and_of_several_are_stored_alike(churn: str, db: Engine) -> None:
    """SQLite packs the keys of a batch sharing one version into one JSON array, and inserts others row by row;
    both store the same rows, whatever the ids hold."""
    ids = ['q"uote', "back\\slash", "😀 emoji", "ctl\x01\x1f\u2028", "i" * 198, "[1]", "é"]
    shared = frame(ids, version="v1")
    several = frame([f"{i}-2" for i in ids], seconds=list(range(10, 17)))
    several[VERSION] = ["v1", None, "v2", "v1", None, "v3", "v1"]
    unversioned = frame([f"{i}-3" for i in ids], seconds=list(range(20, 27)), version=None)
    for data in (shared, several, unversioned):
        assert store(db, churn, data).all()
    with Session(db) as session:
        keys = session.exec(select(ServingEvent.event_id, ServingEvent.ts, ServingEvent.version,
                                   ServingEvent.received_at).order_by(col(ServingEvent.ts))).all()
    want = [(i, T0 + timedelta(seconds=k), "v1", RECEIVED) for k, i in enumerate(ids)]
    want += [(f"{i}-2", T0 + timedelta(seconds=10 + k), v, RECEIVED)
             for k, (i, v) in enumerate(zip(ids, several[VERSION], strict=True))]
    want += [(f"{i}-3", T0 + timedelta(seconds=20 + k), None, RECEIVED) for k, i in enumerate(ids)]
    assert [tuple(k) for k in keys] == want
    assert store(db, churn, shared).tolist() == [False] * len(ids)  # resent: nothing new


def test_copy_paths_on_postgresql(churn: str, db: Engine) -> None:
    """PostgreSQL COPYs new keys straight into serving_event; when an id was stored before, that COPY fails, is
    undone to its savepoint, and the keys go through a temporary table instead (which says which were new).
    (SQLite inserts a batch of new ids straight into serving_event too; whether its connection still has a temporary
    table from an earlier batch depends on which pooled connection it got, so only the stored rows are checked.)"""
    postgres = db.dialect.name == "postgresql"
    temporary = text("SELECT count(*) FROM pg_class WHERE relname = 'ingest_key' AND relpersistence = 't' "
                     "AND pg_table_is_visible(oid)")
    ids = [f"k{i:03d}" for i in range(SMALL_KEYS + 2)]  # more than the few-keys path takes
    with Session(writer(db)) as session:
        if postgres:  # this pooled connection may hold the temporary table from an earlier test
            session.execute(text("DROP TABLE IF EXISTS pg_temp.ingest_key"))
        assert insert_frame(session, model(session, churn), frame(ids + ids[:1])).tolist() == [True] * len(ids) + [
            False]
        direct = session.execute(temporary).scalar_one() if postgres else None
        # In the same transaction: ids[1:] are stored, so the COPY fails and is undone, and the new one goes in the
        # other way.
        again = ids[1:] + ["new"]
        assert insert_frame(session, model(session, churn), frame(again, seconds=list(range(500, 500 + len(again))))
                            ).tolist() == [False] * (len(ids) - 1) + [True]
        through_table = session.execute(temporary).scalar_one() if postgres else None
        session.commit()
    if postgres:
        assert (direct, through_table) == (0, 1)
    assert sorted(window(db, churn)[ID]) == sorted([*ids, "new"])
    with Session(db) as session:
        assert len(session.exec(select(ServingEvent)).all()) == len(ids) + 1


def test_insert_events_wraps_insert_frame(churn: str, db: Engine) -> None:
    rows = [{"event_id": i, "ts": T0, "features": {"f1": 1, "f2": 2.0, "f3": None, "f4": 4}, "prediction": 0,
             "latency_ms": 2.0, "version": "v", "received_at": RECEIVED, "scores": {"0": 0.9, "1": 0.1}}
            for i in ("w1", "w2", "w1")]
    with Session(writer(db)) as session:
        assert insert_events(session, model(session, churn), rows) == 2
        assert insert_events(session, model(session, churn), rows[:1]) == 0
        assert insert_events(session, model(session, churn), []) == 0
        session.commit()
    stored = window(db, churn).set_index(ID)
    assert stored.loc["w1", ["f1", "f2", "f4", PREDICTION, f"{PROBA_PREFIX}0"]].tolist() == [1.0, 2.0, 4.0, "0", 0.9]
    assert np.isnan(stored.loc["w1", "f3"])
