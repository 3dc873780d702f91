"""Ingest: validation of the whole batch before anything is stored, idempotent resends, files, labels."""

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from detectors.base import ERROR, ID, LABEL, LATENCY, PREDICTION, PROBA_PREFIX
from tests import factories
from tests.factories import BuiltModels
from watchtower.clock import utcnow
from watchtower.events.models import Label, ServingEvent
from watchtower.events.store import read_window
from watchtower.registry.models import MonitoredModel


def _events(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(ServingEvent)).one())


def _event(i: int, **features: object) -> dict[str, object]:
    return {"id": f"e{i}", "features": {"f1": 0.1, "f2": 0.2, "f3": 0.3, "f4": 0.4, **features}, "prediction": 1}


@pytest.fixture
def model(client: TestClient, models: BuiltModels) -> str:
    factories.register_tensor(client, models)
    return "churn"


@pytest.mark.parametrize(("bad", "field", "reason"), [
    ({"f9": 1.0}, "body.events.1.features.f9", "unknown feature"),
    ({"f2": "high"}, "body.events.1.features.f2", "expected a number, got str"),
    ({"f3": float("nan")}, "body.events.1.features.f3", "missing or NaN, and the feature is not nullable"),
    ({"f4": None}, "body.events.1.features.f4", "missing or NaN, and the feature is not nullable"),
    ({"f1": True}, "body.events.1.features.f1", "expected a number, got bool"),
])
def test_one_bad_row_rejects_the_batch(client: TestClient, model: str, db: Engine, bad: dict[str, object],
                                       field: str, reason: str) -> None:
    body = {"events": [_event(0), _event(1, **bad), _event(2)]}
    # NaN is not JSON; Python's encoder writes it anyway, as clients in the wild do.
    response = client.post(f"/models/{model}/events", content=__import__("json").dumps(body),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {"field": field, "reason": reason} in response.json()["errors"]
    assert _events(db) == 0


def test_empty_batch_and_unknown_model(client: TestClient, model: str, db: Engine) -> None:
    empty = client.post(f"/models/{model}/events", json={"events": []})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body.events"
    missing = client.post("/models/ghost/events", json={"events": [_event(0)]})
    assert missing.status_code == 404 and missing.json()["detail"] == "no model named 'ghost'"
    assert _events(db) == 0


def test_resending_event_ids_is_harmless(client: TestClient, model: str, db: Engine) -> None:
    first = client.post(f"/models/{model}/events", json={"events": [_event(i) for i in range(5)]})
    assert first.json() == {"accepted": 5, "duplicates": 0}
    again = client.post(f"/models/{model}/events", json={"events": [_event(i) for i in range(3, 8)] + [_event(7)]})
    assert again.status_code == 200 and again.json() == {"accepted": 3, "duplicates": 3}
    assert _events(db) == 8


def test_csv_and_parquet_uploads(client: TestClient, model: str, db: Engine) -> None:
    frame = factories.make_frame(40, seed=3)[factories.NUMERIC].assign(
        id=[f"u{i}" for i in range(40)], prediction=1, ts="2026-11-01T10:00:00Z")
    csv = client.post(f"/models/{model}/events/upload", files={"file": ("e.csv", frame.to_csv(index=False))})
    assert csv.status_code == 200 and csv.json() == {"accepted": 40, "duplicates": 0}
    buffer = io.BytesIO()
    frame.assign(id=[f"p{i}" for i in range(40)]).to_parquet(buffer, index=False)
    parquet = client.post(f"/models/{model}/events/upload", files={"file": ("e.parquet", buffer.getvalue())})
    assert parquet.json() == {"accepted": 40, "duplicates": 0}
    bad = frame.assign(id=[f"b{i}" for i in range(40)], f5=1.0)
    rejected = client.post(f"/models/{model}/events/upload", files={"file": ("e.csv", bad.to_csv(index=False))})
    assert rejected.status_code == 422 and rejected.json()["errors"][0]["field"] == "file.rows.0.f5"
    assert _events(db) == 80
    with Session(db) as session:
        stamp = session.exec(select(ServingEvent.ts).where(ServingEvent.event_id == "u0")).one()
    assert stamp.isoformat().startswith("2026-11-01T10:00:00")


def test_labels_attach_by_prediction_id(client: TestClient, model: str, db: Engine) -> None:
    predictions = factories.serve(client, model, factories.make_frame(3))
    ids = [p["id"] for p in predictions]
    response = client.post(f"/models/{model}/labels", json={"labels": [{"id": i, "label": 1} for i in ids]})
    assert response.json() == {"accepted": 3, "duplicates": 0, "unserved": 0}
    assert client.post(f"/models/{model}/labels", json={"labels": [{"id": ids[0], "label": 0}]}).json() == {
        "accepted": 0, "duplicates": 1, "unserved": 0}
    null = client.post(f"/models/{model}/labels", json={"labels": [{"id": "x", "label": None}]})
    assert null.status_code == 422 and null.json()["errors"][0]["field"] == "body.labels.0.label"
    with Session(db) as session:
        assert sorted(session.exec(select(Label.event_id)).all()) == sorted(ids)


def test_predict_validates_rows_and_records_events(client: TestClient, model: str, db: Engine) -> None:
    bad = client.post(f"/models/{model}/predict", json={"instances": [{"f1": 1, "f2": 2, "f3": 3}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.instances.0.f4"
    ok = client.post(f"/models/{model}/predict", json={
        "instances": [{"f1": 1, "f2": 2, "f3": 3, "f4": 4}], "ids": ["mine-1"]})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["id"] == "mine-1"
    with Session(db) as session:
        event = session.exec(select(ServingEvent)).one()
        frame = read_window(session, _model(session), utcnow() - pd.Timedelta(hours=1), utcnow())
    assert (event.event_id, event.version) == ("mine-1", "primary-v1")
    row = frame.iloc[0]
    assert row[LATENCY] >= 0 and row[ERROR] is None
    assert (row[ID], *row[factories.NUMERIC]) == ("mine-1", 1.0, 2.0, 3.0, 4.0)
    assert row[PREDICTION] == str(ok.json()["predictions"][0]["prediction"])
    # The served model outputs probabilities: they are recorded per class and sum to one.
    proba = [c for c in frame.columns if c.startswith(PROBA_PREFIX)]
    assert sorted(proba) == [f"{PROBA_PREFIX}0", f"{PROBA_PREFIX}1"]
    assert row[proba].sum() == pytest.approx(1.0, abs=1e-6)


def test_window_read_joins_labels(client: TestClient, model: str, db: Engine) -> None:
    predictions = factories.serve(client, model, factories.make_frame(4))
    client.post(f"/models/{model}/labels", json={"labels": [{"id": predictions[0]["id"], "label": 1}]})
    with Session(db) as session:
        frame = read_window(session, _model(session), utcnow() - pd.Timedelta(hours=1), utcnow())
    assert len(frame) == 4 and frame[LABEL].notna().sum() == 1
    assert frame.loc[frame[ID] == predictions[0]["id"], LABEL].item() == "1"


def test_events_land_in_columnar_segments_and_compaction_keeps_every_row(client: TestClient, model: str,
                                                                         db: Engine) -> None:
    from watchtower.events.models import EventSegment
    from watchtower.events.segments import compact

    frames = [factories.make_frame(30, seed=s) for s in range(4)]
    for frame in frames:
        factories.serve(client, model, frame)
    with Session(db) as session:
        before = read_window(session, _model(session), utcnow() - pd.Timedelta(hours=1), utcnow())
        assert len(session.exec(select(EventSegment)).all()) == 4
    with Session(db) as session:
        model_id = _model(session).id
    assert compact(db, model_id) == 4  # type: ignore[arg-type]
    with Session(db) as session:
        segments = session.exec(select(EventSegment).where(col(EventSegment.retired_at).is_(None))).all()
        after = read_window(session, _model(session), utcnow() - pd.Timedelta(hours=1), utcnow())
    assert [s.n_rows for s in segments] == [120]
    pd.testing.assert_frame_equal(before.sort_values(ID).reset_index(drop=True),
                                  after.sort_values(ID).reset_index(drop=True))
    expected = pd.concat(frames)
    assert sorted(after["f1"]) == pytest.approx(sorted(expected["f1"]))


def test_refused_batches_are_counted_by_kind_and_feature(client: TestClient, model: str, db: Engine) -> None:
    from watchtower.events.store import read_rejections

    events = [_event(0), _event(1, f9=2.0), _event(2, f2="high"), _event(3, f2="low", f4=None)]
    assert client.post(f"/models/{model}/events", json={"events": events}).status_code == 422
    with Session(db) as session:
        rejected = read_rejections(session, _model(session).id, utcnow() - pd.Timedelta(hours=1),  # type: ignore
                                   utcnow())
        assert session.exec(select(ServingEvent)).all() == []
    counts = {(r.kind, r.feature): r.count for r in rejected.itertuples()}
    assert counts == {("extra", "f9"): 1, ("wrong_type", "f2"): 2, ("missing", "f4"): 1}


def _model(session: Session) -> MonitoredModel:
    return session.exec(select(MonitoredModel)).one()
