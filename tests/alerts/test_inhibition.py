"""Inhibition: while a data-quality (or pipeline) incident of a model is open, its drift and KPI pages are held."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.inhibition import cause_of, is_held_page
from postmortems.models import TimelineEntry
from tests import factories
from tests.factories import BuiltModels
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

DRIFT = {"model": "churn", "detector": "stat_drift", "kind": "input_drift", "feature": "f1"}
KPI = {"model": "churn", "detector": "accuracy", "kind": "kpi", "feature": "accuracy"}
QUALITY = {"model": "churn", "detector": "missing_values", "kind": "data_quality", "feature": "f3"}
MONITORS = [{"name": "quality", "detectors": [{"name": "missing_values"}], "min_events": 50},
            {"name": "inputs", "detectors": [{"name": "stat_drift"}], "min_events": 100}]
POLICY = {"grouping": "model_monitor", "recovery": None, "rules": [
    {"name": "data", "match": {"kinds": ["data_quality"]}, "actions": ["open_incident", "notify"], "severity": "SEV2"},
    {"name": "drift", "match": {"kinds": ["input_drift"]}, "actions": ["open_incident", "notify"]}]}


def _am_evidence(status: str, **labels: str) -> dict[str, Any]:
    return {"source": "alertmanager", "alerts": [{"status": status, "labels": {"alertname": "FeedStale", **labels}}]}


def test_which_pages_are_held_and_which_incidents_hold_them() -> None:
    assert is_held_page([DRIFT, KPI]) and is_held_page([KPI])
    assert not is_held_page([DRIFT, QUALITY])  # the page is (also) about the cause itself: it goes out
    assert not is_held_page([DRIFT | {"kind": "operational"}]) and not is_held_page([])

    detector = {"model": "churn", "checks": [{"detector": "missing_values", "status": "breached"},
                                             {"detector": "stat_drift", "status": "breached"}]}
    assert cause_of(detector, "churn") == "missing_values breached"
    assert cause_of(detector, "fraud") is None
    assert cause_of({"model": "churn", "checks": [{"detector": "stat_drift", "status": "breached"}]}, "churn") is None
    assert cause_of({"model": "churn", "checks": [{"detector": "missing_values", "status": "ok"}]}, "churn") is None
    assert cause_of(_am_evidence("firing", model="churn", kind="pipeline"), "churn") == (
        "Alertmanager alert FeedStale (pipeline) is firing")
    assert cause_of(_am_evidence("firing", model="churn", kind="data_quality"), "churn") is not None
    assert cause_of(_am_evidence("resolved", model="churn", kind="pipeline"), "churn") is None
    assert cause_of(_am_evidence("firing", model="fraud", kind="pipeline"), "churn") is None
    assert cause_of(_am_evidence("firing", model="churn", kind="latency"), "churn") is None
    assert cause_of(_am_evidence("firing", model="churn"), "churn") is None


def _timeline(engine: Engine, incident_id: int, kind: str) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(TimelineEntry.text).where(
            TimelineEntry.incident_id == incident_id, TimelineEntry.kind == kind).order_by(col(TimelineEntry.id))))


def test_an_open_data_quality_incident_holds_the_drift_page_of_the_same_model(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    features = [{"name": f, "type": "numeric", "nullable": f == "f3"} for f in factories.NUMERIC]
    response = factories.register(client, factories.tensor_spec(features=features, monitors=MONITORS),
                                  models.tensor_primary, models.tensor_fallback, models.reference)
    assert response.status_code == 201, response.text
    assert client.put("/models/churn/policy", json=POLICY).status_code == 200
    frame = factories.make_frame(300, seed=6, shift=1.5)  # f1 and f2 drift; half of f3 goes missing
    events = [{"id": f"e{i}", "prediction": 1, "features": {**row, "f3": None if i % 2 else row["f3"]}}
              for i, row in enumerate(frame[factories.NUMERIC].to_dict("records"))]
    assert client.post("/models/churn/events", json={"events": events}).status_code == 200

    quality = run_monitor(runtime, "churn", "quality")
    assert quality.incident_id is not None and len(factories.queued_pages(db)) == 1  # the cause pages
    drift = run_monitor(runtime, "churn", "inputs")
    assert drift.incident_id is not None and drift.incident_id != quality.incident_id
    assert len(factories.queued_pages(db)) == 1  # the symptom does not
    title = client.get(f"/incidents/{quality.incident_id}").json()["title"]
    line = (f"page inhibited by incident #{quality.incident_id} ({title}): missing_values breached; "
            "one cause, one page")
    assert _timeline(db, drift.incident_id, "inhibited") == [line]
    assert _timeline(db, drift.incident_id, "breach")  # still recorded
    decision = client.get("/models/churn/decisions").json()[0]
    assert [(a["action"], a["outcome"], a["detail"]) for a in decision["actions"]][-1] == (
        "notify", "inhibited", line)
    assert runtime.metrics.registry.get_sample_value("watchtower_breaches_inhibited_total", {"model": "churn"}) == 1

    # The cause is resolved while the inputs still drift: the held page goes out now, once.
    fixed = client.post(f"/incidents/{quality.incident_id}/resolve", json={"author": "ada", "reason": "feed fixed"})
    assert fixed.status_code == 200, fixed.text
    again = run_monitor(runtime, "churn", "inputs")
    assert again.incident_id == drift.incident_id and len(factories.queued_pages(db)) == 2
    run_monitor(runtime, "churn", "inputs")
    assert len(factories.queued_pages(db)) == 2
    assert factories.queued_pages(db) == [quality.incident_id, drift.incident_id]
