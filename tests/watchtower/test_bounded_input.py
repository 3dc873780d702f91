"""Model, event and monitor input the fuzzer once turned into 500s: each is a 422 naming the field, nothing stored."""

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from detectors.base import ERROR, LATENCY
from tests import factories
from tests.factories import BuiltModels
from watchtower.events.models import FeatureLog, Label, MetricPoint, ServingEvent
from watchtower.events.store import read_window
from watchtower.registry.models import Monitor, MonitoredModel

BIG = str(10**400)  # 401 digits: Python's json parses it; no column can hold it
ROW = {"f1": 0.1, "f2": 0.2, "f3": 0.3, "f4": 0.4}


@pytest.fixture
def model(client: TestClient, models: BuiltModels) -> str:
    factories.register_tensor(client, models)
    return "churn"


def raw(client: TestClient, url: str, body: str, method: str = "POST") -> Any:
    """Send a JSON body as written (NaN, Infinity and huge numbers are what some clients really send)."""
    return client.request(method, url, content=body.encode(), headers={"Content-Type": "application/json"})


def assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


def count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


@pytest.mark.parametrize(("url", "field"), [
    ("/models/ch%00urn", "path.name"),
    ("/models/" + "m" * 101, "path.name"),
    ("/pipelines/ch%00urn", "path.name"),
    ("/models/churn/monitors/de%00fault/thresholds", "path.monitor"),
    ("/models/churn/monitors/" + "m" * 101 + "/thresholds", "path.monitor"),
    ("/models/churn/checks?status=ok%00", "query.status"),
])
def test_names_in_paths_and_queries_follow_the_body_rules(client: TestClient, model: str, url: str,
                                                          field: str) -> None:
    assert_refused(client.get(url), field)


@pytest.mark.parametrize("monitor", ["m" * 101, "a b", "-lead", "x%00"])
def test_a_monitor_name_in_the_path_must_match_the_name_pattern(client: TestClient, model: str, db: Engine,
                                                                 monitor: str) -> None:
    assert_refused(client.put(f"/models/churn/monitors/{monitor}", json={}), "path.monitor")
    assert count(db, Monitor) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({"interval_s": 2**40}, "body.interval_s"),
    ({"window_events": 2**31}, "body.window_events"),
    ({"min_events": 2**63}, "body.min_events"),
])
def test_monitor_numbers_fit_their_columns(client: TestClient, model: str, db: Engine, body: dict[str, Any],
                                           field: str) -> None:
    assert_refused(client.put("/models/churn/monitors/fast", json=body), field)
    assert count(db, Monitor) == 1


def event(extra: str = "", event_id: str = '"e"', features: dict[str, Any] | None = None) -> str:
    """One event as JSON text; `extra` is raw JSON (NaN, Infinity and 401-digit numbers survive)."""
    return f'{{"events": [{{"id": {event_id}, "features": {json.dumps(features or ROW)}{extra}}}]}}'


@pytest.mark.parametrize(("text", "field"), [
    (event(event_id='"a\\u0000b"'), "body.events.0.id"),
    (event(event_id=json.dumps("e" * 201)), "body.events.0.id"),
    (event(', "prediction": NaN'), "body.events.0.prediction"),
    (event(', "prediction": Infinity'), "body.events.0.prediction"),
    (event(f', "prediction": {BIG}'), "body.events.0.prediction"),
    (event(', "prediction": {"nested": "a\\u0000"}'), "body.events.0.prediction"),
    (event(', "latency_ms": Infinity'), "body.events.0.latency_ms"),
    (event(', "ts": "0001-01-01T00:00:00+01:00"'), "body.events.0.ts"),
    (event(', "ts": "9999-12-31T23:59:59-01:00"'), "body.events.0.ts"),
    (event(features=ROW | {"f1": int(BIG)}), "body.events.0.features.f1"),
])
def test_event_values_that_cannot_be_stored_are_refused(client: TestClient, model: str, db: Engine, text: str,
                                                        field: str) -> None:
    assert_refused(raw(client, "/models/churn/events", text), field)
    assert count(db, ServingEvent) == 0


@pytest.mark.parametrize(("label", "field"), [
    ("NaN", "body.labels.0.label"), ("Infinity", "body.labels.0.label"), (BIG, "body.labels.0.label"),
    ('"a\\u0000b"', "body.labels.0.label"),
])
def test_labels_must_be_storable(client: TestClient, model: str, db: Engine, label: str, field: str) -> None:
    assert_refused(raw(client, "/models/churn/labels", f'{{"labels": [{{"id": "p1", "label": {label}}}]}}'), field)
    assert count(db, Label) == 0


@pytest.mark.parametrize(("value", "field"), [
    ("NaN", "body.points.0.value"), ("-Infinity", "body.points.0.value"), (BIG, "body.points.0.value"),
])
def test_kpi_values_must_be_finite(client: TestClient, model: str, db: Engine, value: str, field: str) -> None:
    assert_refused(raw(client, "/models/churn/metrics", f'{{"points": [{{"name": "ctr", "value": {value}}}]}}'), field)
    assert_refused(client.post("/models/churn/metrics", json={"points": [
        {"name": "ctr", "value": 0.1, "ts": "9999-12-31T23:59:59-05:00"}]}), "body.points.0.ts")
    assert count(db, MetricPoint) == 0


def test_stage_feature_logs_are_bounded(client: TestClient, model: str, db: Engine) -> None:
    assert_refused(client.post("/models/churn/stages/training/features",
                               json={"rows": [{"id": "x\x00", "features": ROW}]}), "body.rows.0.id")
    assert_refused(raw(client, "/models/churn/stages/training/features",
                       f'{{"rows": [{{"id": "x", "features": {json.dumps(ROW | {"f2": int(BIG)})}}}]}}'),
                   "body.rows.0.features.f2")
    assert count(db, FeatureLog) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"instances": [ROW], "ids": ["p" * 201]}, "body.ids.0"),
    ({"instances": [ROW], "ids": ["p\x00"]}, "body.ids.0"),
    ({"instances": [ROW | {"f3": 10**400}]}, "body.instances.0.f3"),
])
def test_predict_input_that_cannot_be_stored_is_refused(client: TestClient, model: str, db: Engine,
                                                        body: dict[str, Any], field: str) -> None:
    assert_refused(client.post("/models/churn/predict", json=body), field)
    assert count(db, ServingEvent) == 0


@pytest.mark.parametrize(("csv", "field"), [
    ("id,f1,f2,f3,f4\n" + "e" * 201 + ",1,2,3,4\n", "file.rows.0.id"),
    ("id,f1,f2,f3,f4,ts\ne1,1,2,3,4,0001-01-01T00:00:00+01:00\n", "file.rows.0.ts"),
    ("id,f1,f2,f3,f4,ts\ne1,1,2,3,4,not a time\n", "file.rows.0.ts"),
    ("id,f1,f2,f3,f4,latency_ms\ne1,1,2,3,4,inf\n", "file.rows.0.latency_ms"),
    ("id,f1,f2,f3,f4,version\ne1,1,2,3,4," + "v" * 101 + "\n", "file.rows.0.version"),
])
def test_uploaded_event_files_are_checked_like_json_events(client: TestClient, model: str, db: Engine, csv: str,
                                                           field: str) -> None:
    response = client.post("/models/churn/events/upload", files={"file": ("events.csv", csv.encode())})
    assert_refused(response, field)
    assert count(db, ServingEvent) == 0


def test_model_spec_strings_and_urls_fit_their_columns(client: TestClient, models: BuiltModels) -> None:
    long_url = "https://example.com/" + "p" * 2000
    spec = factories.tensor_spec("churn", pipeline={"webhook_url": long_url})
    response = factories.register(client, spec, models.tensor_primary, models.tensor_fallback, models.reference)
    assert_refused(response, "spec.pipeline.webhook_url")
    spec = factories.tensor_spec("churn", target="l\x00bel")
    response = factories.register(client, spec, models.tensor_primary, models.tensor_fallback, models.reference)
    assert_refused(response, "spec.target")
    assert client.get("/models").json() == []


def test_uploaded_text_columns_may_look_like_numbers(client: TestClient, model: str, db: Engine) -> None:
    csv = "id,f1,f2,f3,f4,version,error,latency_ms,ts\ne1,1,2,3,4,2,500,1.5,2026-01-02T03:04:05+01:00\n"
    response = client.post("/models/churn/events/upload", files={"file": ("events.csv", csv.encode())})
    assert response.status_code == 200, response.text
    with Session(db) as session:
        event = session.exec(select(ServingEvent)).one()
        model_row = session.exec(select(MonitoredModel)).one()
        row = read_window(session, model_row, event.ts, event.ts + timedelta(seconds=1)).iloc[0]
    assert (event.version, row[ERROR], row[LATENCY]) == ("2", "500", 1.5)
    assert event.ts.isoformat().startswith("2026-01-02T02:04:05")
