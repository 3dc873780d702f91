"""The response policy: defaults that page nobody on healthy traffic, confirmation, grouping, dry run, recovery,
time to detect, and the policy API."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from alerts.outbox import OutboxMessage
from postmortems.models import Incident
from tests import factories
from tests.conftest import SlackRecorder
from tests.factories import BuiltModels
from watchtower.checks.models import CheckRun
from watchtower.delivery import deliver_outbox
from watchtower.monitor import run_monitor
from watchtower.policy.models import PolicyDecision
from watchtower.runtime import Runtime

DRIFT = [{"detectors": [{"name": "stat_drift"}], "min_events": 100}]


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def _rule(name: str, actions: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "actions": actions, **extra}


def test_the_default_policy_is_served_validated_and_overridden_per_model(client: TestClient,
                                                                         models: BuiltModels) -> None:
    default = client.get("/policy").json()
    assert default["scope"] == "builtin"
    rules = {r["name"]: r for r in default["policy"]["rules"]}
    assert list(rules) == ["data-quality", "model-kpi", "operational", "drift"]
    assert rules["data-quality"]["actions"] == ["pause_pipeline", "open_incident", "notify"]
    assert rules["data-quality"]["confirm"] == {"k": 1, "n": 1}
    assert rules["model-kpi"]["actions"][0] == "swap_model"
    assert rules["drift"]["actions"] == ["open_incident", "notify"] and rules["drift"]["confirm"] == {"k": 2, "n": 3}

    for body, field in [
        ({"rules": [_rule("a", ["reboot"])]}, "body.rules.0.actions.0"),
        ({"rules": [_rule("a", ["notify"], match={"kinds": ["vibes"]})]}, "body.rules.0.match.kinds.0"),
        ({"rules": [_rule("a", ["record"], match={"detectors": ["nope"]})]}, "body.rules.0.match.detectors"),
        ({"rules": [_rule("a", ["record"], confirm={"k": 3, "n": 2})]}, "body.rules.0.confirm"),
        ({"rules": [_rule("a", ["record", "notify"])]}, "body.rules.0.actions"),
        ({"rules": [_rule("a", ["record"]), _rule("a", ["record"])]}, "body.rules"),
        ({"rules": [], "grouping": "team"}, "body.grouping"),
    ]:
        response = client.put("/policy", json=body)
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], response.json()

    factories.register_tensor(client, models, monitors=DRIFT)
    assert client.get("/models/churn").json()["policy"]["scope"] == "builtin"
    own = {"rules": [_rule("all-drift", ["open_incident", "notify"], severity="SEV4")], "grouping": "model_monitor"}
    assert client.put("/models/churn/policy", json=own).status_code == 200
    assert client.get("/models/churn/policy").json()["scope"] == "model"
    assert client.get("/models/churn").json()["policy"]["policy"]["rules"][0]["name"] == "all-drift"
    assert client.put("/policy", json={"rules": []}).json()["scope"] == "default"
    assert client.delete("/models/churn/policy").json()["scope"] == "default"
    assert client.delete("/models/churn/policy").status_code == 404
    assert client.put("/policy", json=own, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_healthy_small_windows_page_nobody_and_a_data_quality_breach_pauses_at_once(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine, slack: SlackRecorder) -> None:
    runtime.settings.slack_token, runtime.settings.slack_base_url = SecretStr("xoxb-test"), slack.base_url
    spec_features = [{"name": f, "type": "numeric", "nullable": f == "f3"} for f in factories.NUMERIC]
    response = factories.register(client, factories.tensor_spec(features=spec_features, monitors=[
        {"window_events": 500, "min_events": 500}]), models.tensor_primary, models.tensor_fallback, models.reference)
    assert response.status_code == 201, response.text  # the default monitor: drift, prediction drift, quality, KPI
    noisy = []
    for i in range(10):
        factories.serve(client, "churn", factories.make_frame(500, seed=100 + i), labels=True)
        result = run_monitor(runtime, "churn", "default")
        assert result.status in ("ok", "breached") and result.plan is not None
        if result.status == "breached":
            noisy.append(result.plan.explain())
    # A small healthy window does breach now and then (here: accuracy once); none is confirmed, nobody is paged.
    assert noisy and all("waits for confirmation" in n for n in noisy), noisy
    assert _count(db, Incident) == 0 and _count(db, OutboxMessage) == 0
    assert client.get("/pipelines/churn").json()["paused"] is False

    frame = factories.make_frame(500, seed=200)
    events = [{"id": f"dq{i}", "prediction": 1, "features": {**row, "f3": None if i % 2 else row["f3"]}}
              for i, row in enumerate(frame[factories.NUMERIC].to_dict("records"))]
    assert client.post("/models/churn/events", json={"events": events}).status_code == 200
    result = run_monitor(runtime, "churn", "default")
    assert result.plan is not None and [h.rule.name for h in result.plan.fired] == ["data-quality"]
    assert client.get("/pipelines/churn").json()["paused"] is True  # at once: 1 of 1
    assert client.get("/models/churn").json()["active_role"] == "primary"  # data, not the model: no swap
    incident = client.get(f"/incidents/{result.incident_id}").json()
    assert incident["severity"] == "SEV2" and "rule 'data-quality'" in incident["severity_rule"]
    assert "missing_values breached on f3" in incident["evidence"]["policy"]["explanation"]
    assert deliver_outbox(runtime) == 1 and len(slack.calls) == 1


def test_drift_alone_confirms_over_passes_and_opens_a_lower_severity_incident_without_mitigating(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT)
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    first = run_monitor(runtime, "churn", "default")
    assert first.status == "breached" and first.incident_id is None and _count(db, Incident) == 0
    second = run_monitor(runtime, "churn", "default")
    assert second.incident_id is not None and second.plan is not None and second.plan.actions == (
        "open_incident", "notify")
    incident = client.get(f"/incidents/{second.incident_id}").json()
    assert incident["severity"] == "SEV3" and "matched 2 of the last 3 passes" in incident["severity_rule"]
    assert client.get("/pipelines/churn").json()["paused"] is False
    assert client.get("/models/churn").json()["active_role"] == "primary"
    decisions = client.get("/models/churn/decisions").json()
    assert [d["fired"] for d in decisions] == [["drift"], []] and decisions[1]["matched"] == ["drift"]
    assert "waits for confirmation" in decisions[1]["explanation"]


def test_two_monitors_of_one_model_give_one_incident_that_shows_both(client: TestClient, runtime: Runtime,
                                                                     models: BuiltModels, db: Engine) -> None:
    kpi = {"name": "accuracy", "params": {"min_labels": 50, "min_accuracy": 0.8, "max_drop": None}}
    factories.register_tensor(client, models, monitors=[
        {"name": "inputs", **DRIFT[0]}, {"name": "quality", "detectors": [kpi], "min_events": 50}])
    policy = {"rules": [_rule("kpi", ["swap_model", "open_incident", "notify"], severity="SEV2",
                              match={"kinds": ["kpi"]}),
                        _rule("drift", ["open_incident", "notify"], severity="SEV3")]}
    assert client.put("/models/churn/policy", json=policy).status_code == 200
    frame = factories.make_frame(300, seed=5, shift=1.0)
    frame["label"] = 1 - frame["label"]
    factories.serve(client, "churn", frame, labels=True)
    drift = run_monitor(runtime, "churn", "inputs")
    kpis = run_monitor(runtime, "churn", "quality")
    assert drift.incident_id is not None and kpis.incident_id == drift.incident_id
    assert _count(db, Incident) == 1
    incident = client.get(f"/incidents/{drift.incident_id}").json()
    assert incident["severity"] == "SEV2"  # raised by the KPI breach of the second monitor
    assert {(c["monitor"], c["detector"]) for c in incident["evidence"]["checks"]} == {
        ("inputs", "stat_drift"), ("quality", "accuracy")}
    assert "accuracy" in incident["title"] and "stat_drift" in incident["title"]
    assert "inputs, quality monitors" in incident["title"]
    assert "kpi-degradation" in [t["tag"] for t in incident["tags"]]
    markdown = client.get(f"/incidents/{drift.incident_id}/export", params={"format": "markdown"}).text
    assert "accuracy" in markdown and "stat_drift" in markdown
    found = client.get("/incidents", params={"q": "accuracy"}).json()
    assert drift.incident_id in [hit["id"] for hit in found["hits"]]
    page = client.get(f"/postmortems/incidents/{drift.incident_id}").text
    assert "accuracy" in page and "Not evaluated" not in page and "quality monitor, breached" in page
    assert "Response policy:</strong> rule &#39;kpi&#39; fired (SEV2: swap to the fallback" in page


def test_a_dry_run_rule_records_what_it_would_do_and_changes_nothing(client: TestClient, runtime: Runtime,
                                                                     models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT)
    everything = ["pause_pipeline", "swap_model", "open_incident", "notify"]
    assert client.put("/models/churn/policy", json={"rules": [_rule("drift", everything, dry_run=True)]}
                      ).status_code == 200
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "breached" and result.incident_id is None
    assert client.get("/pipelines/churn").json()["paused"] is False
    assert client.get("/models/churn").json()["active_role"] == "primary"
    assert _count(db, Incident) == 0 and _count(db, OutboxMessage) == 0
    [decision] = client.get("/models/churn/decisions").json()
    assert {a["outcome"] for a in decision["actions"]} == {"dry_run"}
    details = {a["action"]: a["detail"] for a in decision["actions"]}
    assert details["swap_model"] == "would swap to fallback-v1"
    assert details["pause_pipeline"] == "would pause pipeline 'churn'"
    assert "dry run: would pause the pipeline" in decision["explanation"]
    assert {c["decision_id"] for c in client.get("/models/churn/checks").json()} == {decision["id"]}
    assert runtime.metrics.registry.get_sample_value("watchtower_policy_dry_run_actions_total", {
        "model": "churn", "rule": "drift", "action": "swap_model"}) == 1

    # Beside a live rule, the dry-run one is noted on the incident's timeline.
    policy = {"rules": [_rule("swap-trial", ["swap_model"], dry_run=True, match={"detectors": ["stat_drift"]},
                              confirm={"k": 1, "n": 1}),
                        _rule("anything", ["open_incident", "notify"], match={"detectors": ["prediction_drift"]})]}
    assert client.put("/models/churn/policy", json=policy).status_code == 200
    client.put("/models/churn/monitors/default", json={
        "detectors": [{"name": "stat_drift"}, {"name": "prediction_drift"}], "min_events": 100})
    result = run_monitor(runtime, "churn", "default")
    assert result.incident_id is not None, result.plan.explain() if result.plan else None
    timeline = client.get(f"/incidents/{result.incident_id}").json()["timeline"]
    assert "Dry run of rule 'swap-trial': would swap to fallback-v1" in [e["text"] for e in timeline]
    assert client.get("/models/churn").json()["active_role"] == "primary"


@pytest.mark.parametrize("resolve", [False, True])
def test_an_incident_recovers_after_healthy_passes(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                   resolve: bool) -> None:
    factories.register_tensor(client, models, monitors=[{"detectors": [{"name": "stat_drift"}],
                                                         "window_events": 300, "min_events": 300}])
    policy = {"rules": [_rule("drift", ["open_incident", "notify"])],
              "recovery": {"healthy_passes": 2, "resolve": resolve}}
    assert client.put("/models/churn/policy", json=policy).status_code == 200
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    incident_id = run_monitor(runtime, "churn", "default").incident_id
    assert incident_id is not None

    def healthy_block(seed: int) -> list[str]:
        """Serve the next 300 healthy events, run a pass over them, return the incident's recovery notes."""
        factories.serve(client, "churn", factories.make_frame(300, seed=seed))
        assert run_monitor(runtime, "churn", "default").status == "ok"
        timeline = client.get(f"/incidents/{incident_id}").json()["timeline"]
        return [e["text"] for e in timeline if e["kind"] == "recovered"]

    assert healthy_block(6) == []
    assert healthy_block(8) == ["Recovered: 2 healthy passes in a row, no rule matched"]
    assert len(healthy_block(9)) == 1  # noted once per spell
    status = client.get(f"/incidents/{incident_id}").json()["status"]
    assert status == ("resolved" if resolve else "open")  # resolving stays a person's call unless the policy says


def test_time_to_detect_counts_from_the_first_event_of_the_breaching_block(client: TestClient, runtime: Runtime,
                                                                           models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=[{"detectors": [{"name": "stat_drift"}],
                                                         "window_events": 200, "min_events": 200}])
    assert client.put("/models/churn/policy", json={"rules": [_rule("drift", ["open_incident"])]}).status_code == 200
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

    def block(first: datetime, shift: float, seed: int, prefix: str) -> None:
        rows = factories.make_frame(200, seed=seed, shift=shift)[factories.NUMERIC].to_dict("records")
        events = [{"id": f"{prefix}{i}", "ts": (first + timedelta(seconds=i)).isoformat(), "features": row}
                  for i, row in enumerate(rows)]
        assert client.post("/models/churn/events", json={"events": events}).status_code == 200

    now = start + timedelta(hours=2)
    block(start, 0.0, 1, "a")
    assert run_monitor(runtime, "churn", "default", now=now).status == "ok"
    block(start + timedelta(hours=1), 2.0, 2, "b")
    result = run_monitor(runtime, "churn", "default", now=now)
    assert result.incident_id is not None
    incident = client.get(f"/incidents/{result.incident_id}").json()
    first_served = start + timedelta(hours=1)
    assert datetime.fromisoformat(incident["impact_started_at"]) == first_served
    assert incident["durations"]["time_to_detect"] == (
        datetime.fromisoformat(incident["opened_at"]) - first_served).total_seconds()
    assert runtime.metrics.registry.get_sample_value("watchtower_incident_stage_seconds_sum", {
        "stage": "detect"}) == incident["durations"]["time_to_detect"]
    with Session(runtime.engine) as session:
        assert session.exec(select(func.count()).select_from(PolicyDecision)).one() == 2
        assert session.exec(select(func.count()).select_from(CheckRun)).one() == 2
