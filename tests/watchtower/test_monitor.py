"""Monitor passes: detection, insufficient data, the breach sequence, restore/resume, failures that must not stop it."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from alerts.outbox import OutboxMessage
from postmortems.models import Incident
from tests import factories
from tests.conftest import SlackRecorder
from tests.factories import BuiltModels
from watchtower.actions.models import ActionRun
from watchtower.checks.models import CheckRun
from watchtower.delivery import deliver_outbox
from watchtower.monitor import run_monitor, run_monitor_pass
from watchtower.registry.models import MonitoredModel
from watchtower.runtime import Runtime

DRIFT_ONLY = [{"detectors": [{"name": "evidently_drift"}, {"name": "stat_drift"}], "min_events": 100}]


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def _breach(client: TestClient, runtime: Runtime, models: BuiltModels, seed: int = 5) -> int:
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(300, seed=seed, shift=1.0))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "breached" and result.incident_id is not None
    return result.incident_id


def test_healthy_traffic_does_not_breach(client: TestClient, runtime: Runtime, models: BuiltModels,
                                         db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(400, seed=11))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "ok"
    findings = [f for o in result.outcomes for f in o.findings]
    assert len(findings) == 8 and not any(f.breached for f in findings)
    assert _count(db, Incident) == 0
    assert client.get("/models/churn").json()["active_role"] == "primary"


def test_shifted_traffic_is_detected_on_the_shifted_features(client: TestClient, runtime: Runtime,
                                                             models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "breached"
    for outcome in result.outcomes:
        drifted = {f.feature for f in outcome.findings if f.breached}
        assert drifted == {"f1", "f2"}, outcome.detector
    checks = client.get("/models/churn/checks").json()
    assert {c["detector"] for c in checks} == {"evidently_drift", "stat_drift"}
    evidently = next(c for c in checks if c["detector"] == "evidently_drift")
    assert evidently["engine"] == "evidently" and evidently["status"] == "breached" and evidently["n_current"] == 300
    f1 = next(r for r in evidently["results"] if r["feature"] == "f1")
    assert f1["test"] == "ks" and f1["p_value"] < 1e-6 and f1["threshold"] == pytest.approx(0.05 / 4)
    assert f1["breached"] is True


def test_too_few_events_is_insufficient_data_without_alert(client: TestClient, runtime: Runtime,
                                                           models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(40, seed=5, shift=3.0))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "insufficient_data"
    runs = client.get("/models/churn/checks").json()
    assert {r["status"] for r in runs} == {"insufficient_data"}
    assert runs[0]["error"] == "40 events, need 100"
    assert _count(db, Incident) == 0 and _count(db, OutboxMessage) == 0


def test_default_monitor_waits_for_events_though_its_schema_check_is_clean(client: TestClient, runtime: Runtime,
                                                                           models: BuiltModels) -> None:
    factories.register_tensor(client, models)  # no monitors named: the default detectors
    factories.serve(client, "churn", factories.make_frame(40, seed=5))
    result = run_monitor(runtime, "churn", "default")
    statuses = {o.detector: o.status for o in result.outcomes}
    assert statuses.pop("schema_mismatch") == "ok"
    assert set(statuses.values()) == {"insufficient_data"} and "native_drift" in statuses
    assert result.status == "insufficient_data"


def test_accuracy_waits_for_labels_then_breaches(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    params = {"min_labels": 50, "min_accuracy": 0.8, "max_drop": None}
    monitors = [{"detectors": [{"name": "accuracy", "params": params}], "min_events": 50}]
    factories.register_tensor(client, models, monitors=monitors)
    frame = factories.make_frame(120, seed=8)
    frame["label"] = 1 - frame["label"]  # the world flipped: every true label is now the other class
    factories.serve(client, "churn", frame)
    assert run_monitor(runtime, "churn", "default").outcomes[0].status == "insufficient_data"
    factories.serve(client, "churn", frame.iloc[:60], labels=True)
    result = run_monitor(runtime, "churn", "default")
    finding = result.outcomes[0].findings[0]
    assert result.status == "breached" and finding.score < 0.5 and finding.threshold == 0.8


@pytest.mark.usefixtures("act_on_any_breach")
def test_breach_sequence_pause_swap_incident_alert(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                   db: Engine, slack: SlackRecorder) -> None:
    runtime.settings.slack_token = __import__("pydantic").SecretStr("xoxb-test")
    runtime.settings.slack_base_url = slack.base_url
    incident_id = _breach(client, runtime, models)

    pipeline = client.get("/pipelines/churn").json()
    assert pipeline["paused"] is True and "breached" in pipeline["paused_reason"]
    after = client.post("/models/churn/predict", json={"instances": [{"f1": 0, "f2": 0, "f3": 0, "f4": 0}]})
    assert after.json()["role"] == "fallback" and after.json()["version"] == "fallback-v1"

    incident = client.get(f"/incidents/{incident_id}").json()
    assert incident["status"] == "open" and incident["severity"] == "SEV3"
    assert "feature-distribution-shift" in [t["tag"] for t in incident["tags"]]
    kinds = [e["kind"] for e in incident["timeline"]]
    assert kinds == ["breach", "pause_pipeline", "swap_model", "open_incident", "notify"]
    drifted = {f["feature"] for c in incident["evidence"]["checks"] for f in c["findings"]}
    assert drifted == {"f1", "f2"}

    assert deliver_outbox(runtime) == 1
    assert len(slack.calls) == 1
    call = slack.calls[0]
    assert call["path"] == "/api/chat.postMessage" and call["auth"] == "Bearer xoxb-test"
    assert call["body"]["channel"] == "#ml-incidents"
    assert f"Incident #{incident_id}" in call["body"]["text"]
    assert f"http://watchtower.test/postmortems/incidents/{incident_id}" in str(call["body"]["blocks"])
    with Session(db) as session:
        runs = session.exec(select(ActionRun.action, ActionRun.ok)).all()
    assert sorted(runs) == sorted([("pause_pipeline", True), ("swap_model", True), ("open_incident", True),
                                   ("notify", True)])


@pytest.mark.usefixtures("act_on_any_breach")
def test_predictions_during_the_swap_all_succeed(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    row = {"instances": [{"f1": 0.3, "f2": -0.1, "f3": 0.0, "f4": 1.0}]}
    stop = threading.Event()

    def hammer() -> list[tuple[int, str]]:
        seen = []
        while not stop.is_set() or not seen:
            response = client.post("/models/churn/predict", json=row)
            seen.append((response.status_code, response.json().get("role", response.text)))
        return seen

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(hammer) for _ in range(4)]
        result = run_monitor(runtime, "churn", "default")
        stop.set()
        outcomes = [r for f in futures for r in f.result()]
    assert result.status == "breached"
    assert {status for status, _ in outcomes} == {200}
    assert {role for _, role in outcomes} <= {"primary", "fallback"}
    assert client.post("/models/churn/predict", json=row).json()["role"] == "fallback"


@pytest.mark.usefixtures("act_on_any_breach")
def test_repeated_breaches_extend_one_open_incident(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                    db: Engine) -> None:
    first = _breach(client, runtime, models)
    second = run_monitor(runtime, "churn", "default")
    assert second.status == "breached" and second.incident_id == first
    assert _count(db, Incident) == 1 and _count(db, OutboxMessage) == 1
    timeline = client.get(f"/incidents/{first}").json()["timeline"]
    assert [e["kind"] for e in timeline].count("breach") == 2
    resolved = client.post(f"/incidents/{first}/resolve", json={"author": "ana", "reason": "feature fixed"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    third = run_monitor(runtime, "churn", "default")
    assert third.incident_id not in (None, first) and _count(db, Incident) == 2


@pytest.mark.usefixtures("act_on_any_breach")
def test_restore_and_resume_are_recorded_decisions(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                   db: Engine) -> None:
    incident_id = _breach(client, runtime, models)
    missing = client.post("/models/churn/restore", json={"author": "ana"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.reason"
    restored = client.post("/models/churn/restore", json={"author": "ana", "reason": "upstream unit bug fixed"})
    assert restored.status_code == 200 and restored.json()["active_role"] == "primary"
    assert client.post("/models/churn/restore", json={"author": "ana", "reason": "again"}).status_code == 409
    assert client.post("/models/churn/predict", json={"instances": [{"f1": 0, "f2": 0, "f3": 0, "f4": 0}]}
                       ).json()["role"] == "primary"
    resumed = client.post("/pipelines/churn/resume", json={"author": "bo", "reason": "backfill verified"})
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert client.post("/pipelines/churn/resume", json={"author": "bo", "reason": "x"}).status_code == 409
    timeline = client.get(f"/incidents/{incident_id}").json()["timeline"]
    human = [(e["kind"], e["author"], e["source"]) for e in timeline if e["source"] == "human"]
    assert human == [("restore", "ana", "human"), ("resume", "bo", "human")]
    assert "upstream unit bug fixed" in timeline[-2]["text"]
    with Session(db) as session:
        audit = session.exec(select(ActionRun.action, ActionRun.author, ActionRun.reason)
                             .where(ActionRun.author != "watchtower")).all()
    assert sorted(audit) == [("restore", "ana", "upstream unit bug fixed"), ("resume", "bo", "backfill verified")]


@pytest.mark.usefixtures("act_on_any_breach")
def test_slack_down_does_not_break_the_pass(client: TestClient, runtime: Runtime, models: BuiltModels,
                                            db: Engine, slack: SlackRecorder) -> None:
    runtime.settings.slack_token = __import__("pydantic").SecretStr("xoxb-test")
    runtime.settings.slack_base_url = slack.base_url
    slack.fail = True
    incident_id = _breach(client, runtime, models)
    assert deliver_outbox(runtime) == 0
    assert runtime.metrics.registry.get_sample_value("watchtower_delivery_failures_total", {"kind": "slack"}) == 1
    with Session(db) as session:
        message = session.exec(select(OutboxMessage)).one()
        assert message.status == "pending" and message.attempts == 1 and "internal_error" in (message.last_error or "")
        message.next_attempt_at = message.created_at  # make the retry due now
        session.add(message)
        session.commit()
    slack.fail = False
    assert deliver_outbox(runtime) == 1 and len(slack.calls) == 2
    assert client.get(f"/incidents/{incident_id}").json()["status"] == "open"


@pytest.mark.usefixtures("act_on_any_breach")
def test_no_slack_token_logs_the_alert_and_goes_on(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                   db: Engine) -> None:
    _breach(client, runtime, models)
    assert deliver_outbox(runtime) == 0
    with Session(db) as session:
        message = session.exec(select(OutboxMessage)).one()
    assert message.status == "skipped" and "no WATCHTOWER_SLACK_TOKEN" in (message.last_error or "")


@pytest.mark.usefixtures("act_on_any_breach")
def test_a_crashing_detector_is_recorded_and_others_still_run(client: TestClient, runtime: Runtime,
                                                              models: BuiltModels, db: Engine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from detectors.stat_drift import StatDrift

    def boom(self: StatDrift, window: object) -> list[object]:
        raise RuntimeError("detector bug")

    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    monkeypatch.setattr(StatDrift, "run", boom)
    result = run_monitor(runtime, "churn", "default")
    statuses = {o.detector: o.status for o in result.outcomes}
    assert statuses == {"evidently_drift": "breached", "stat_drift": "error"}
    assert result.incident_id is not None
    assert runtime.metrics.registry.get_sample_value("watchtower_monitor_failures_total", {"model": "churn"}) == 1
    with Session(db) as session:
        error = session.exec(select(CheckRun.error).where(CheckRun.detector == "stat_drift")).one()
    assert error == "RuntimeError: detector bug"


@pytest.mark.usefixtures("act_on_any_breach")
def test_a_failing_action_does_not_stop_the_others(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                   db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from watchtower.actions.swap_model import SwapToFallback

    def broken(self: SwapToFallback, ctx: object, session: object) -> str:
        raise RuntimeError("registry unreachable")

    monkeypatch.setattr(SwapToFallback, "execute", broken)
    incident_id = _breach(client, runtime, models)
    incident = client.get(f"/incidents/{incident_id}").json()
    assert incident["severity"] == "SEV2" and "mitigation failed (swap_model)" in incident["severity_rule"]
    swap = next(e for e in incident["timeline"] if e["kind"] == "swap_model")
    assert swap["text"] == "FAILED: RuntimeError: registry unreachable"
    assert client.get("/models/churn").json()["active_role"] == "primary"
    assert runtime.metrics.registry.get_sample_value("watchtower_action_failures_total",
                                                     {"action": "swap_model"}) == 1


@pytest.mark.usefixtures("act_on_any_breach")
def test_a_worse_second_breach_raises_the_open_incidents_severity(client: TestClient, runtime: Runtime,
                                                                  models: BuiltModels,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from watchtower.actions.swap_model import SwapToFallback

    incident_id = _breach(client, runtime, models)  # drift with every mitigation done: SEV3
    assert client.get(f"/incidents/{incident_id}").json()["severity"] == "SEV3"

    def broken(self: SwapToFallback, ctx: object, session: object) -> str:
        raise RuntimeError("registry unreachable")

    monkeypatch.setattr(SwapToFallback, "execute", broken)
    again = run_monitor(runtime, "churn", "default")
    assert again.incident_id == incident_id
    incident = client.get(f"/incidents/{incident_id}").json()
    assert incident["severity"] == "SEV2"
    assert any(e["kind"] == "severity" and "SEV3 to SEV2" in e["text"] for e in incident["timeline"])
    found = client.get("/incidents", params={"severity": "SEV2"}).json()  # search reads the raised severity
    assert [h["id"] for h in found["hits"]] == [incident_id] and found["facets"]["severity"] == [["SEV2", 1]]


def test_a_pass_over_every_model_survives_one_broken_model(client: TestClient, runtime: Runtime,
                                                           models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.register_tensor(client, models, name="other", monitors=DRIFT_ONLY)
    factories.serve(client, "other", factories.make_frame(300, seed=5, shift=1.0))
    with Session(db) as session:  # corrupt churn's schema so building its window fails
        churn = session.exec(select(MonitoredModel).where(MonitoredModel.name == "churn")).one()
        churn.features = [{"name": "f1"}]
        session.add(churn)
        session.commit()
    results = {r.model: r.status for r in run_monitor_pass(runtime)}
    assert results == {"churn": "error", "other": "breached"}


@pytest.mark.usefixtures("act_on_any_breach")
def test_pause_calls_the_pipeline_webhook_and_retries_it(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                         db: Engine, webhook: SlackRecorder) -> None:
    hook = webhook.base_url.removesuffix("api/") + "hooks/pause"
    factories.register_tensor(client, models, monitors=DRIFT_ONLY,
                              pipeline={"name": "churn-training", "webhook_url": hook})
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    webhook.fail = True
    assert run_monitor(runtime, "churn", "default").status == "breached"
    assert client.get("/pipelines/churn-training").json()["paused"] is True
    deliver_outbox(runtime)
    assert len(webhook.calls) == 1  # tried once, failed (500), kept for a retry
    with Session(db) as session:
        message = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "webhook")).one()
        assert message.status == "pending" and "500" in (message.last_error or "")
        message.next_attempt_at = message.created_at
        session.add(message)
        session.commit()
    webhook.fail = False
    deliver_outbox(runtime)
    call = webhook.calls[-1]
    assert call["path"] == "/hooks/pause"
    assert call["body"]["event"] == "pipeline.paused" and call["body"]["pipeline"] == "churn-training"
    assert call["body"]["model"] == "churn" and "breached" in call["body"]["reason"]


def test_categorical_drift_goes_through_evidently_chi_square(client: TestClient, runtime: Runtime,
                                                             models: BuiltModels) -> None:
    response = factories.register(client, factories.named_spec(monitors=DRIFT_ONLY), models.named_primary,
                                  models.named_fallback, models.reference)
    assert response.status_code == 201, response.text
    healthy = factories.make_frame(300, seed=21)
    factories.serve(client, "mixed", healthy, columns=factories.MIXED_NUMERIC + factories.CATEGORICAL)
    assert run_monitor(runtime, "mixed", "default").status == "ok"
    shifted = factories.make_frame(300, seed=22, colors=(0.1, 0.2, 0.7))
    factories.serve(client, "mixed", shifted, columns=factories.MIXED_NUMERIC + factories.CATEGORICAL)
    result = run_monitor(runtime, "mixed", "default")
    evidently = next(o for o in result.outcomes if o.detector == "evidently_drift")
    color = next(f for f in evidently.findings if f.feature == "color")
    assert color.test == "chisquare" and color.engine == "evidently" and color.breached
    assert {f.feature for f in evidently.findings if f.breached} == {"color"}


@pytest.mark.usefixtures("act_on_any_breach")
def test_native_engine_runs_from_the_stored_profile(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                    db: Engine) -> None:
    from watchtower.registry.models import ReferenceData

    monitors = [{"detectors": [{"name": "native_drift"}, {"name": "evidently_compatible_drift"}], "min_events": 100}]
    factories.register_tensor(client, models, monitors=monitors)
    with Session(db) as session:
        assert session.exec(select(ReferenceData.profile)).one()  # profiled once, at registration
    factories.serve(client, "churn", factories.make_frame(400, seed=5, shift=0.5))
    result = run_monitor(runtime, "churn", "default")
    native = next(o for o in result.outcomes if o.detector == "native_drift")
    assert {f.feature for f in native.findings if f.breached} == {"f1", "f2"}
    checks = {c["detector"]: c for c in client.get("/models/churn/checks").json()}
    assert checks["native_drift"]["engine"] == "native"
    assert checks["evidently_compatible_drift"]["engine"] == "evidently-compatible"
    incident = client.get(f"/incidents/{result.incident_id}").json()
    assert "__dataset__" not in {f["feature"] for c in incident["evidence"]["checks"] for f in c["findings"]
                                 if c["detector"] == "native_drift"}
