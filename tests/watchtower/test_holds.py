"""Operator decisions stick: a restore holds automatic swaps, a resume holds automatic pauses, and a breach during a
hold is recorded and alerted (once, and again if the severity rises), never silently redone or dropped."""

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tests import factories
from tests.conftest import SlackRecorder
from tests.factories import BuiltModels
from watchtower.clock import utcnow
from watchtower.delivery import deliver_outbox
from watchtower.gauges import read_operational
from watchtower.monitor import run_monitor
from watchtower.policy import holds
from watchtower.policy.models import PolicyDecision
from watchtower.registry.models import MonitoredModel
from watchtower.runtime import Runtime

# The breach is the set-up, not what is tested: the native drift engine (Evidently takes seconds a pass, and
# tests/watchtower/test_monitor.py covers it).
DRIFT_ONLY = [{"detectors": [{"name": "native_drift"}, {"name": "stat_drift"}], "min_events": 100}]
pytestmark = pytest.mark.usefixtures("act_on_any_breach")  # every breach: pause, swap, incident, page


@pytest.fixture
def slack_on(runtime: Runtime, slack: SlackRecorder) -> SlackRecorder:
    runtime.settings.slack_token = SecretStr("xoxb-test")
    runtime.settings.slack_base_url = slack.base_url
    return slack


def _breach(client: TestClient, runtime: Runtime, models: BuiltModels) -> int:
    """A real breach: shifted traffic through real ONNX models, one pass; every action ran."""
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "breached" and result.incident_id is not None
    assert client.get("/models/churn").json()["active_role"] == "fallback"
    return result.incident_id


def _timeline(client: TestClient, incident_id: int, kind: str) -> list[str]:
    return [e["text"] for e in client.get(f"/incidents/{incident_id}").json()["timeline"] if e["kind"] == kind]


def _last_actions(db: Engine) -> dict[str, tuple[str, str]]:
    with Session(db) as session:
        decision = session.exec(select(PolicyDecision).order_by(col(PolicyDecision.id).desc())).first()
    assert decision is not None
    return {a["action"]: (a["outcome"], a["detail"]) for a in decision.actions}


def _held_alerts(slack: SlackRecorder) -> list[dict[str, Any]]:
    """Top-level messages about held breaches (the incident's own message gets edits and thread replies too)."""
    return [c["body"] for c in slack.calls if c["path"].endswith("/chat.postMessage")
            and "thread_ts" not in c["body"] and "breach continues" in c["body"]["text"]]


def _held_gauge(runtime: Runtime, action: str) -> float | None:
    return runtime.metrics.registry.get_sample_value("watchtower_action_held", {"model": "churn", "action": action})


def test_a_restore_followed_by_more_breaching_passes_neither_reswaps_nor_stays_silent(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine, slack_on: SlackRecorder) -> None:
    incident_id = _breach(client, runtime, models)
    assert deliver_outbox(runtime) == 1  # the incident's page
    restored = client.post("/models/churn/restore", json={"author": "ana", "reason": "upstream unit bug fixed"})
    assert restored.status_code == 200, restored.text
    hold = restored.json()["holds"][0]
    assert (hold["action"], hold["author"], hold["incident_id"], hold["active"]) == ("swap_model", "ana",
                                                                                   incident_id, True)
    assert _held_gauge(runtime, "swap_model") == 1 and _held_gauge(runtime, "pause_pipeline") == 0

    for _ in range(3):  # the window still holds the bad rows: every pass breaches again
        again = run_monitor(runtime, "churn", "default")
        assert again.status == "breached" and again.incident_id == incident_id
        assert client.get("/models/churn").json()["active_role"] == "primary"
        outcome, detail = _last_actions(db)["swap_model"]
        assert outcome == "held" and "automatic swap held by ana since" in detail
    assert _last_actions(db)["open_incident"][0] == "done"  # the rest of the plan still runs

    held = _timeline(client, incident_id, "held")
    assert len(held) == 3
    assert held[0].startswith("breach continues; automatic swap held by ana since ")
    assert held[0].endswith(" UTC: upstream unit bug fixed")
    [restore] = _timeline(client, incident_id, "restore")
    assert restore == (f"serving restored to primary-v1; automatic swap held until incident #{incident_id} is "
                       "resolved or re-armed: upstream unit bug fixed")

    deliver_outbox(runtime)
    [alert] = _held_alerts(slack_on)  # one held-alert for three held passes, not one per pass
    assert alert["text"].startswith("[SEV3] churn: breach continues; automatic swap held by ana since ")
    assert f"/postmortems/incidents/{incident_id}" in str(alert["blocks"])
    assert client.get("/models/churn/holds").json()[0]["alerted_severity"] == "SEV3"


def test_a_held_breach_alerts_again_when_the_incident_gets_worse(
        client: TestClient, runtime: Runtime, models: BuiltModels, slack_on: SlackRecorder) -> None:
    incident_id = _breach(client, runtime, models)
    client.post("/models/churn/restore", json={"author": "ana", "reason": "false alarm"})
    run_monitor(runtime, "churn", "default")
    run_monitor(runtime, "churn", "default")
    deliver_outbox(runtime)
    assert len(_held_alerts(slack_on)) == 1
    raised = client.patch(f"/incidents/{incident_id}", json={"author": "bo", "severity": "SEV2"})
    assert raised.status_code == 200, raised.text
    run_monitor(runtime, "churn", "default")
    run_monitor(runtime, "churn", "default")
    deliver_outbox(runtime)
    alerts = _held_alerts(slack_on)  # once more, at the new severity, and not again after
    assert len(alerts) == 2 and alerts[-1]["text"].startswith("[SEV2] churn: breach continues; automatic swap held")
    assert client.get("/models/churn").json()["active_role"] == "primary"


def test_a_resume_holds_automatic_pauses(client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine,
                                         slack_on: SlackRecorder) -> None:
    incident_id = _breach(client, runtime, models)
    deliver_outbox(runtime)
    resumed = client.post("/pipelines/churn/resume", json={"author": "bo", "reason": "backfill verified"})
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert _held_gauge(runtime, "pause_pipeline") == 1 and _held_gauge(runtime, "swap_model") == 0
    for _ in range(2):
        assert run_monitor(runtime, "churn", "default").status == "breached"
        assert client.get("/pipelines/churn").json()["paused"] is False
        assert _last_actions(db)["pause_pipeline"][0] == "held"
    held = _timeline(client, incident_id, "held")
    assert len(held) == 2 and held[0].startswith("breach continues; automatic pause held by bo since ")
    assert held[0].endswith(": backfill verified")
    deliver_outbox(runtime)
    [alert] = _held_alerts(slack_on)
    assert "automatic pause held by bo" in alert["text"]
    assert [h["action"] for h in client.get("/models/churn").json()["holds"]] == ["pause_pipeline"]


def test_a_hold_ends_at_the_time_the_operator_set(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                  db: Engine) -> None:
    _breach(client, runtime, models)
    now = utcnow()
    past = client.post("/models/churn/restore", json={"author": "ana", "reason": "r",
                                                      "hold_until": (now - timedelta(minutes=1)).isoformat()})
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "body.hold_until"
    far = client.post("/models/churn/restore", json={"author": "ana", "reason": "r",
                                                     "hold_until": (now + timedelta(days=90)).isoformat()})
    assert far.status_code == 422 and far.json()["errors"][0]["field"] == "body.hold_until"
    assert client.get("/models/churn").json()["active_role"] == "fallback"  # a refused body changes nothing

    until = now + timedelta(minutes=5)
    restored = client.post("/models/churn/restore", json={"author": "ana", "reason": "canary looks fine",
                                                          "hold_until": until.isoformat()})
    assert restored.status_code == 200, restored.text
    run_monitor(runtime, "churn", "default", now=until - timedelta(minutes=1))
    assert client.get("/models/churn").json()["active_role"] == "primary"
    assert _last_actions(db)["swap_model"][0] == "held"

    run_monitor(runtime, "churn", "default", now=until + timedelta(minutes=1))  # past hold_until: it acts again
    assert client.get("/models/churn").json()["active_role"] == "fallback"
    assert _last_actions(db)["swap_model"][0] == "done"
    assert read_operational(db, now=until + timedelta(minutes=1))["watchtower_action_held"] == [
        ({"model": "churn", "action": "pause_pipeline"}, 0.0), ({"model": "churn", "action": "swap_model"}, 0.0)]
    assert read_operational(db, now=until - timedelta(minutes=1))["watchtower_action_held"][1][1] == 1.0


def test_rearming_through_the_api_lets_the_next_breach_swap(client: TestClient, runtime: Runtime,
                                                            models: BuiltModels, db: Engine) -> None:
    incident_id = _breach(client, runtime, models)
    client.post("/models/churn/restore", json={"author": "ana", "reason": "upstream fixed"})
    assert client.post("/models/churn/holds/swap_model/rearm", json={"author": "bo"}).status_code == 422
    unknown = client.post("/models/churn/holds/open_incident/rearm", json={"author": "bo", "reason": "x"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "path.action"
    assert client.post("/models/churn/holds/pause_pipeline/rearm",
                       json={"author": "bo", "reason": "x"}).status_code == 404  # nothing holds pauses
    rearmed = client.post("/models/churn/holds/swap_model/rearm", json={"author": "bo", "reason": "fix failed"})
    assert rearmed.status_code == 200, rearmed.text
    [hold] = rearmed.json()
    assert (hold["active"], hold["released_by"], hold["release_reason"]) == (False, "bo", "fix failed")
    assert client.get("/models/churn").json()["holds"] == []
    assert _timeline(client, incident_id, "rearm") == ["Automatic swap re-armed: fix failed"]

    run_monitor(runtime, "churn", "default")
    assert client.get("/models/churn").json()["active_role"] == "fallback"
    assert _last_actions(db)["swap_model"][0] == "done"
    assert client.post("/models/churn/holds/swap_model/rearm",
                       json={"author": "bo", "reason": "again"}).status_code == 404


def test_resolving_the_incident_releases_its_holds(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    incident_id = _breach(client, runtime, models)
    client.post("/models/churn/restore", json={"author": "ana", "reason": "upstream fixed"})
    client.post("/pipelines/churn/resume", json={"author": "ana", "reason": "upstream fixed"})
    assert len(client.get("/models/churn").json()["holds"]) == 2
    resolved = client.post(f"/incidents/{incident_id}/resolve", json={"author": "ana", "reason": "fixed"})
    assert resolved.status_code == 200
    assert client.get("/models/churn").json()["holds"] == []
    assert _held_gauge(runtime, "swap_model") == 0 and _held_gauge(runtime, "pause_pipeline") == 0
    ended = client.get("/models/churn/holds").json()
    assert {h["ended"] for h in ended} == {f"incident #{incident_id} is resolved"}
    assert client.get("/models/churn/holds", params={"active": True}).json() == []
    reopened = client.post(f"/incidents/{incident_id}/status", json={"status": "reopen", "author": "ana",
                                                                     "reason": "not fixed after all"})
    assert reopened.status_code == 200, reopened.text
    assert len(client.get("/models/churn").json()["holds"]) == 2  # its holds hold again while it is active
    client.post(f"/incidents/{incident_id}/resolve", json={"author": "ana", "reason": "fixed now"})
    assert client.get("/models/churn").json()["holds"] == []

    again = run_monitor(runtime, "churn", "default")  # a new failure: a new incident, mitigated again
    assert again.incident_id not in (None, incident_id)
    assert client.get("/models/churn").json()["active_role"] == "fallback"
    assert client.get("/pipelines/churn").json()["paused"] is True


def test_the_incident_page_shows_the_hold(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    incident_id = _breach(client, runtime, models)
    assert "Automatic actions held" not in client.get(f"/postmortems/incidents/{incident_id}").text
    until = utcnow() + timedelta(hours=2)
    client.post("/models/churn/restore", json={"author": "ana", "reason": "upstream unit bug fixed",
                                               "hold_until": until.isoformat()})
    page = client.get(f"/postmortems/incidents/{incident_id}")
    assert page.status_code == 200
    section = page.text[page.text.index('id="holds"'):page.text.index("</section>", page.text.index('id="holds"'))]
    assert "Automatic actions held" in section and "automatic swap" in section
    assert "ana" in section and "upstream unit bug fixed" in section
    assert until.strftime("%Y-%m-%d %H:%M") in section and f"incident #{incident_id} resolved" in section
    assert "<strong>held</strong>" in section


def test_a_newer_decision_replaces_the_hold(client: TestClient, models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    now = utcnow()
    with Session(db) as session:
        model_id = session.exec(select(MonitoredModel.id).where(MonitoredModel.name == "churn")).one()
        assert model_id is not None
        first = holds.take(session, model_id, "pause_pipeline", "ana", "first", now)
        holds.take(session, model_id, "pause_pipeline", "bo", "second", now + timedelta(seconds=1))
        session.commit()
        assert first.released_by == "bo" and first.release_reason == "replaced by a newer hold"
    [hold] = client.get("/models/churn").json()["holds"]  # no incident: it holds until re-armed
    assert (hold["author"], hold["incident_id"], hold["until"]) == ("bo", None, None)
    assert hold["text"].endswith(": second (until re-armed)")
    assert [h["active"] for h in client.get("/models/churn/holds").json()] == [True, False]
