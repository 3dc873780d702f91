"""Nothing wrong is accepted silently, and each refusal says how to fix it (issue 9, point 6)."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from detectors.base import LABEL
from tests import factories
from tests.factories import BuiltModels
from watchtower.clock import utcnow
from watchtower.events.models import Label, ServingEvent
from watchtower.events.store import read_window
from watchtower.registry.models import Monitor, MonitoredModel


@pytest.fixture
def model(client: TestClient, models: BuiltModels) -> str:
    factories.register_tensor(client, models)
    return "churn"


def _fields(response: object) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]  # type: ignore[attr-defined]


def test_a_monitor_with_both_window_kinds_is_refused(client: TestClient, models: BuiltModels, model: str,
                                                     db: Engine) -> None:
    both = client.put(f"/models/{model}/monitors/blocks", json={"window_s": 600, "window_events": 500})
    assert both.status_code == 422 and both.headers["content-type"] == "application/problem+json"
    assert _fields(both) == ["body.window_s", "body.window_events"]
    assert "not both" in both.json()["errors"][0]["reason"]
    spec = factories.tensor_spec("twice", monitors=[{"name": "m", "window_s": 60, "window_events": 100}])
    registered = factories.register(client, spec, models.tensor_primary, models.tensor_fallback, models.reference)
    assert registered.status_code == 422
    assert _fields(registered) == ["spec.monitors.0.window_s", "spec.monitors.0.window_events"]
    with Session(db) as session:
        assert session.exec(select(Monitor.name)).all() == ["default"]


def test_a_monitor_body_naming_another_monitor_is_refused(client: TestClient, model: str, db: Engine) -> None:
    other = client.put(f"/models/{model}/monitors/hourly", json={"name": "daily", "window_s": 3600})
    assert other.status_code == 422 and _fields(other) == ["body.name"]
    assert "'hourly'" in other.json()["errors"][0]["reason"]
    same = client.put(f"/models/{model}/monitors/hourly", json={"name": "hourly", "window_s": 3600})
    unnamed = client.put(f"/models/{model}/monitors/daily", json={"window_s": 86400})
    assert same.status_code == unnamed.status_code == 200
    assert [m["name"] for m in unnamed.json()["monitors"]] == ["default", "hourly", "daily"]


@pytest.mark.parametrize(("url", "field"), [
    ("/incidents?qq=drift", "query.qq"),
    ("/models/churn/checks?state=ok", "query.state"),
    ("/models?limit=3", "query.limit"),
    ("/healthz?verbose=1", "query.verbose"),
])
def test_an_unknown_query_parameter_is_named(client: TestClient, model: str, url: str, field: str) -> None:
    response = client.get(url)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert _fields(response) == [field]
    assert "unknown query parameter; this endpoint takes" in response.json()["errors"][0]["reason"]


def test_unknown_query_parameters_on_writes_and_pages(client: TestClient, model: str, db: Engine) -> None:
    write = client.post(f"/models/{model}/events?dry_run=1", json={"events": [
        {"id": "e1", "features": {"f1": 0, "f2": 0, "f3": 0, "f4": 0}}]})
    assert write.status_code == 422 and _fields(write) == ["query.dry_run"]
    with Session(db) as session:
        assert session.exec(select(ServingEvent.event_id)).all() == []
    page = client.get("/postmortems?serverity=SEV1")
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    assert "query.serverity" in page.text


def test_a_misspelt_filter_value_lists_the_allowed_ones(client: TestClient, model: str) -> None:
    response = client.get(f"/models/{model}/checks", params={"status": "breach"})
    assert response.status_code == 422 and _fields(response) == ["query.status"]
    assert "'ok', 'breached', 'insufficient_data' or 'error'" in response.json()["errors"][0]["reason"]
    assert client.get(f"/models/{model}/checks", params={"status": "breached"}).json() == []
    page = client.get("/postmortems", params={"severity": "SEV9"})
    assert page.status_code == 422 and "query.severity" in page.text
    assert client.get("/postmortems", params={"severity": "", "sort": "date"}).status_code == 200
    assert client.get("/postmortems", params={"sort": "newest"}).status_code == 422


def test_onnx_signature_mismatch_reads_in_words(client: TestClient, models: BuiltModels, db: Engine) -> None:
    spec = factories.named_spec(features=[{"name": "f1", "type": "numeric"}, {"name": "f2", "type": "numeric"}])
    response = factories.register(client, spec, models.named_primary, models.named_fallback,
                                  models.reference)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "primary"
    assert ("the ONNX graph takes inputs 'f1', 'f2', 'color'; the spec's features are 'f1', 'f2'; "
            "'color' is in the graph but not in the spec.") in error["reason"]


def _labels(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.exec(select(Label.event_id)).all())


def test_labels_for_ids_never_served_are_refused_by_default(client: TestClient, model: str, db: Engine) -> None:
    served = [p["id"] for p in factories.serve(client, model, factories.make_frame(2))]
    batch = [{"id": served[0], "label": 1}, {"id": "ghost-1", "label": 0}, {"id": served[1], "label": 1},
             {"id": "ghost-2", "label": 1}]
    refused = client.post(f"/models/{model}/labels", json={"labels": batch})
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert _fields(refused) == ["body.labels.1.id", "body.labels.3.id"]
    assert "allow_unserved=true" in refused.json()["errors"][0]["reason"]
    assert refused.json()["detail"].startswith("2 of 4 labels name prediction ids never served by 'churn'")
    assert _labels(db) == []  # nothing stored, not even the two known ids
    kept = client.post(f"/models/{model}/labels", params={"allow_unserved": "true"}, json={"labels": batch})
    assert kept.status_code == 200 and kept.json() == {"accepted": 4, "duplicates": 0, "unserved": 2}
    assert _labels(db) == sorted([*served, "ghost-1", "ghost-2"])


def test_early_labels_join_their_events_when_they_arrive(client: TestClient, model: str, db: Engine) -> None:
    early = client.post(f"/models/{model}/labels?allow_unserved=true", json={"labels": [{"id": "late", "label": 1}]})
    assert early.json() == {"accepted": 1, "duplicates": 0, "unserved": 1}
    event = {"id": "late", "features": {"f1": 0.1, "f2": 0.2, "f3": 0.3, "f4": 0.4}, "prediction": 1}
    assert client.post(f"/models/{model}/events", json={"events": [event]}).status_code == 200
    with Session(db) as session:
        model_row = session.exec(select(MonitoredModel)).one()
        frame = read_window(session, model_row, utcnow() - timedelta(hours=1), utcnow() + timedelta(seconds=1))
    assert frame[LABEL].tolist() == ["1"]


def test_labels_name_ids_of_this_model_only(client: TestClient, models: BuiltModels, model: str,
                                           db: Engine) -> None:
    factories.register_tensor(client, models, name="other")
    other = [p["id"] for p in factories.serve(client, "other", factories.make_frame(1))]
    refused = client.post(f"/models/{model}/labels", json={"labels": [{"id": other[0], "label": 1}]})
    assert refused.status_code == 422 and _fields(refused) == ["body.labels.0.id"]
    assert client.post("/models/other/labels", json={"labels": [{"id": other[0], "label": 1}]}).status_code == 200


def test_a_json_body_to_a_multipart_endpoint_names_the_parts(client: TestClient, model: str, db: Engine) -> None:
    register = client.post("/models", json={"spec": factories.tensor_spec("json")})
    assert register.status_code == 415 and register.headers["content-type"] == "application/problem+json"
    assert "multipart/form-data with the parts spec, primary, fallback, reference" in register.json()["detail"]
    assert _fields(register) == ["header.content-type", "body.spec", "body.primary", "body.fallback",
                                 "body.reference"]
    version = client.post(f"/models/{model}/versions", json={"primary": "..."})
    assert version.status_code == 415 and "body.primary" in _fields(version)
    upload = client.post(f"/models/{model}/events/upload", content=b"id,f1\n1,2\n",
                         headers={"Content-Type": "text/csv"})
    assert upload.status_code == 415 and _fields(upload) == ["header.content-type", "body.file"]
    with Session(db) as session:
        assert session.exec(select(MonitoredModel.name)).all() == [model]
    assert "415" in client.get("/openapi.json").json()["paths"]["/models"]["post"]["responses"]
