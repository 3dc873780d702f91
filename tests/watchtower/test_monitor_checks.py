"""The service feeds every detector its context: stage logs (skew), refused events (schema), history (volume),
business metrics, count-based windows and learned thresholds — each through the API and a real monitor pass."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests import factories
from tests.factories import BuiltModels
from watchtower.checks.models import CheckResult, CheckRun
from watchtower.clock import utcnow
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime


def _monitor(client: TestClient, name: str, **body: Any) -> None:
    response = client.put(f"/models/churn/monitors/{name}", json=body)
    assert response.status_code == 200, response.text


def _findings(runtime: Runtime, name: str) -> dict[tuple[str, str], Any]:
    result = run_monitor(runtime, "churn", name)
    return {(f.test, f.feature): f for o in result.outcomes for f in o.findings}


def test_training_serving_skew_joins_the_stage_log_on_prediction_ids(client: TestClient, runtime: Runtime,
                                                                     models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    frame = factories.make_frame(200, seed=3)
    ids = [f"p{i}" for i in range(200)]
    training = frame[factories.NUMERIC].copy()
    training.loc[:9, "f3"] += 1.0  # the training pipeline computed f3 differently for 10 of 200 entities
    logged = client.post("/models/churn/stages/training/features", json={"rows": [
        {"id": i, "features": row} for i, row in zip(ids, training.to_dict("records"), strict=True)]})
    assert logged.status_code == 200 and logged.json() == {"accepted": 200, "duplicates": 0}
    for start in range(0, 200, 100):
        served = client.post("/models/churn/predict", json={
            "instances": frame[factories.NUMERIC].iloc[start:start + 100].to_dict("records"),
            "ids": ids[start:start + 100]})
        assert served.status_code == 200
    _monitor(client, "skew", detectors=[{"name": "feature_skew", "params": {"max_mismatch_rate": 0.01}}],
             min_events=50)
    findings = _findings(runtime, "skew")
    assert findings["mismatch_rate", "f3"].score == pytest.approx(10 / 200)
    assert findings["mismatch_rate", "f3"].breached
    assert findings["mismatch_rate", "f1"].score == 0 and not findings["mismatch_rate", "f1"].breached


def test_stage_logs_refuse_the_serving_stage_and_bad_rows(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    row = {"id": "a", "features": {"f1": 1, "f2": 2, "f3": 3, "f4": 4}}
    reserved = client.post("/models/churn/stages/serving/features", json={"rows": [row]})
    assert reserved.status_code == 422 and reserved.json()["errors"][0]["field"] == "path.stage"
    bad = client.post("/models/churn/stages/training/features",
                      json={"rows": [{"id": "a", "features": {"f1": "x", "f2": 2, "f3": 3, "f4": 4}}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.rows.0.features.f1"


def test_refused_events_surface_as_a_schema_mismatch_finding(client: TestClient, runtime: Runtime,
                                                             models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    factories.serve(client, "churn", factories.make_frame(60, seed=1))
    bad = [{"id": f"x{i}", "features": {"f1": 1.0, "f2": 2.0, "f3": 3.0, "f4": 4.0, "f9": 1.0}} for i in range(20)]
    assert client.post("/models/churn/events", json={"events": bad}).status_code == 422
    _monitor(client, "schema", detectors=[{"name": "schema_mismatch"}], min_events=10)
    findings = _findings(runtime, "schema")
    assert findings["extra", "f9"].breached and findings["extra", "f9"].score == pytest.approx(20 / 80)


def test_a_dead_feed_breaches_volume_even_below_min_events(client: TestClient, runtime: Runtime,
                                                           models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    _monitor(client, "volume", detectors=[{"name": "volume", "params": {"expected_per_hour": 500}}],
             window_s=3600, min_events=100)
    result = run_monitor(runtime, "churn", "volume")
    drop = next(f for o in result.outcomes for f in o.findings if f.test == "volume_drop")
    assert result.status == "breached" and drop.score == 0 and drop.breached


def test_volume_learns_the_expected_count_from_previous_windows(client: TestClient, runtime: Runtime,
                                                                models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models)
    now = utcnow()
    events = [{"id": f"h{w}-{i}", "ts": (now - timedelta(hours=w, minutes=30)).isoformat(),
               "features": {"f1": 0.1, "f2": 0.2, "f3": 0.3, "f4": 0.4}, "prediction": 1}
              for w in range(1, 9) for i in range(50)]  # 50 events in each of the 8 previous hours
    events += [{**e, "id": f"now-{i}", "ts": (now - timedelta(minutes=5)).isoformat()}
               for i, e in enumerate(events[:5])]  # and only 5 in this one
    assert client.post("/models/churn/events", json={"events": events}).status_code == 200
    _monitor(client, "volume", detectors=[{"name": "volume"}], window_s=3600, min_events=1)
    result = run_monitor(runtime, "churn", "volume", now)
    drop = next(f for o in result.outcomes for f in o.findings if f.test == "volume_drop")
    assert drop.extra["expected"] == 50 and drop.score == 5 and drop.breached


def test_count_windows_tumble_through_blocks_of_events(client: TestClient, runtime: Runtime,
                                                       models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models)
    _monitor(client, "blocks", detectors=[{"name": "missing_values"}], window_events=100, min_events=50)
    start = utcnow() - timedelta(hours=2)

    def send(first: int, n: int) -> None:
        events = [{"id": f"e{i}", "ts": (start + timedelta(seconds=i)).isoformat(),
                   "features": {"f1": 0.1, "f2": 0.2, "f3": 0.3, "f4": 0.4}, "prediction": 1}
                  for i in range(first, first + n)]
        assert client.post("/models/churn/events", json={"events": events}).status_code == 200

    send(0, 250)
    first = run_monitor(runtime, "churn", "blocks")  # the newest 100 events: e150..e249
    second = run_monitor(runtime, "churn", "blocks")  # nothing new yet
    send(250, 120)
    third = run_monitor(runtime, "churn", "blocks")  # e250..e349; 20 wait for the next block
    assert (first.status, second.status, third.status) == ("ok", "insufficient_data", "ok")
    with Session(db) as session:
        runs = session.exec(select(CheckRun).order_by(CheckRun.id)).all()  # type: ignore[arg-type]
    assert [r.n_current for r in runs] == [100, 0, 100]
    assert runs[1].error == "0 events since the last block, a block needs 100"
    assert runs[0].window_start == start + timedelta(seconds=150)
    assert runs[2].window_start > start + timedelta(seconds=249)


def test_business_kpis_pushed_through_the_api_are_checked(client: TestClient, runtime: Runtime,
                                                          models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    points = [{"name": "ctr", "value": v} for v in (0.011, 0.009, 0.010)] + [{"name": "other", "value": 5.0}]
    assert client.post("/models/churn/metrics", json={"points": points}).status_code == 200
    bad = client.post("/models/churn/metrics", json={"points": [{"name": "ctr", "value": "high"}]})
    assert bad.status_code == 422
    _monitor(client, "business", detectors=[{"name": "business_kpi",
                                             "params": {"metric": "ctr", "min_value": 0.02}}], min_events=1)
    result = run_monitor(runtime, "churn", "business")
    finding = next(f for o in result.outcomes for f in o.findings)
    assert result.status == "breached" and finding.score == pytest.approx(0.01) and finding.breached


def test_learned_thresholds_come_from_reference_chunks_and_are_recorded(client: TestClient, runtime: Runtime,
                                                                        models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models)
    threshold = {"mode": "quantile", "q": 0.95, "source": "reference_chunks", "chunk_rows": 150}
    bad = client.put("/models/churn/monitors/learned", json={"detectors": [
        {"name": "native_drift", "params": {"numeric_tests": ["psi"]}, "threshold": {**threshold, "q": 2}}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.detectors.0.threshold.q"
    _monitor(client, "learned", detectors=[{"name": "native_drift", "params": {"numeric_tests": ["psi"]},
                                            "threshold": threshold}], min_events=100)
    factories.serve(client, "churn", factories.make_frame(300, seed=9, shift=1.0))
    result = run_monitor(runtime, "churn", "learned")
    assert result.status == "breached"
    fitted = client.get("/models/churn/monitors/learned/thresholds").json()
    assert {f["feature"] for f in fitted} >= {"f1", "f2", "f3", "f4"}
    assert all("over 10 reference chunks" in f["source"] and f["n"] == 10 for f in fitted)
    with Session(db) as session:
        stored = session.exec(select(CheckResult)).all()
    by_feature = {r.feature: r for r in stored if r.test == "psi"}
    f1 = next(f for f in fitted if f["feature"] == "f1" and f["test"] == "psi")
    assert by_feature["f1"].threshold == pytest.approx(f1["value"]) and by_feature["f1"].breached
    assert by_feature["f1"].threshold_source == f1["source"]
    assert not by_feature["f3"].breached  # f3 is not shifted


def test_learned_thresholds_from_healthy_history_refit_on_demand(client: TestClient, runtime: Runtime,
                                                                 models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models)
    threshold = {"mode": "mean_std", "k": 3, "min_samples": 3, "floor": 0.0}
    _monitor(client, "history", detectors=[{"name": "missing_values", "threshold": threshold}], min_events=10)
    factories.serve(client, "churn", factories.make_frame(40, seed=2))
    first = run_monitor(runtime, "churn", "history")
    sources = {f.threshold_source for o in first.outcomes for f in o.findings}
    assert sources == {"static (only 0 healthy scores, need 3)"}
    for _ in range(3):
        run_monitor(runtime, "churn", "history")
    refit = client.post("/models/churn/monitors/history/thresholds/refit")
    assert refit.status_code == 200
    assert {f["source"] for f in refit.json()} == {"mean+3·std of 4 healthy scores"}
