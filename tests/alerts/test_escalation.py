"""Escalation: steps run when nobody acknowledges and stop when someone does, re-page after the ack timeout, the
chain frozen at the start, schedule steps page whoever is on call then, repeats, silenced breaches, restarts,
and the pages sent through the real slack-sdk client. Time is passed to advance_escalations, never slept."""

from datetime import timedelta

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from alerts.oncall.escalation import advance_escalations
from tests.alerts.escalation_helpers import (
    add_people,
    add_policy,
    dms,
    escalation,
    page_via_alertmanager,
    started,
    step,
    timeline,
    two_hour_schedule,
)
from tests.alerts.oncall_helpers import who
from tests.conftest import SlackRecorder
from watchtower.app import create_app
from watchtower.delivery import deliver_outbox
from watchtower.runtime import Runtime


def _metric(runtime: Runtime, name: str, labels: dict[str, str] | None = None) -> float:
    return runtime.metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_escalation_to_step_2_when_nobody_acknowledges_and_none_after_an_ack(
        client: TestClient, runtime: Runtime, db: Engine, slack: SlackRecorder) -> None:
    runtime.settings.slack_token, runtime.settings.slack_base_url = SecretStr("xoxb-test"), slack.base_url
    add_people(client)
    add_policy(client, "ml", [step(10, user="alice"), step(15, user="bob", channel="#ml-leads")])
    ignored = page_via_alertmanager(client, "FeatureStoreDown")
    t0 = started(db, ignored)
    assert dms(db, ignored) == ["U0ALICE"]  # step 1 at once, with the incident's first page
    assert advance_escalations(runtime, t0 + timedelta(minutes=9)) == 0  # not due yet
    assert advance_escalations(runtime, t0 + timedelta(minutes=10)) == 1
    assert dms(db, ignored) == ["U0ALICE", "U0BOB"]
    entries = timeline(db, ignored, "escalation", "page")
    assert entries[0][:2] == ("escalation", "escalation") and "policy 'ml'" in entries[0][2]
    assert entries[1] == ("page", "escalation", "Escalation step 1 of 2 (policy 'ml'): paged alice (named in the "
                          "policy) by DM")
    assert entries[2] == ("escalation", "escalation", "Escalated to step 2: nobody acknowledged")
    assert entries[3] == ("page", "escalation", "Escalation step 2 of 2 (policy 'ml'): paged bob (named in the "
                          "policy) by DM; paged channel #ml-leads")
    assert _metric(runtime, "watchtower_pages_sent_total", {"channel": "dm"}) == 2
    assert _metric(runtime, "watchtower_pages_sent_total", {"channel": "channel"}) == 1
    assert _metric(runtime, "watchtower_escalations_total") == 1

    # Everything went through the outbox: the incident message, DMs, thread mentions, the channel page.
    assert deliver_outbox(runtime, now=t0 + timedelta(minutes=11)) >= 5
    posts = [c["body"] for c in slack.calls if c["path"] == "/api/chat.postMessage"]
    assert {p["channel"] for p in posts if "You are paged" in p["text"]} == {"U0ALICE", "U0BOB"}
    threads = [p["text"] for p in posts if "thread_ts" in p]
    assert any("<@U0ALICE>" in t for t in threads) and any("<@U0BOB>" in t for t in threads)
    assert any(p["channel"] == "#ml-leads" and "incident #" in p["text"] for p in posts)
    assert all(c["auth"] == "Bearer xoxb-test" for c in slack.calls)

    answered = page_via_alertmanager(client, "ModelServerDown")
    t1 = started(db, answered)
    acked = client.post(f"/incidents/{answered}/status", json={"status": "acknowledged", "author": "alice"})
    assert acked.status_code == 200, acked.text
    assert advance_escalations(runtime, t1 + timedelta(minutes=30)) == 0
    assert dms(db, answered) == ["U0ALICE"]  # bob was never paged
    state = escalation(db, answered)
    assert state is not None and state.state == "acknowledged"
    assert timeline(db, answered, "escalation")[-1][2].startswith("Escalation stopped: acknowledged by alice at ")
    assert _metric(runtime, "watchtower_acknowledgements_total") == 1
    assert _metric(runtime, "watchtower_incident_stage_seconds_count", {"stage": "acknowledge"}) == 1
    # Resolved: the escalation is over for good.
    client.post(f"/incidents/{ignored}/status", json={"status": "resolved", "author": "bob"})
    assert advance_escalations(runtime, t0 + timedelta(days=1)) == 0
    done = escalation(db, ignored)
    assert done is not None and done.state == "done"


def test_the_chain_is_frozen_when_it_starts(client: TestClient, runtime: Runtime, db: Engine) -> None:
    add_people(client)
    add_policy(client, "ml", [step(5, user="alice"), step(5, user="bob")])
    in_flight = page_via_alertmanager(client, "FeatureStoreDown")
    t0 = started(db, in_flight)
    changed = client.patch("/escalation-policies/ml", json={"steps": [step(5, user="carol"), step(5, user="carol")]})
    assert changed.status_code == 200, changed.text
    assert advance_escalations(runtime, t0 + timedelta(minutes=5)) == 1
    assert dms(db, in_flight) == ["U0ALICE", "U0BOB"]  # the chain it started with, not carol
    later = page_via_alertmanager(client, "ModelServerDown")
    assert dms(db, later) == []  # the new chain: carol, who has no Slack id...
    assert timeline(db, later, "page")[-1][2] == ("Escalation step 1 of 2 (policy 'ml'): carol (named in the "
                                                  "policy) has no Slack id: no DM, mentioned by name only")
    frozen = client.get(f"/incidents/{in_flight}/escalation").json()
    assert [s["targets"] for s in frozen["chain"]["steps"]] == [[{"user": "alice"}], [{"user": "bob"}]]


def test_a_schedule_step_pages_whoever_is_on_call_at_that_time(
        client: TestClient, runtime: Runtime, db: Engine) -> None:
    add_people(client)
    schedule_id = two_hour_schedule(client)
    add_policy(client, "ml", [step(120, schedule="primary")], repeat=1)
    incident_id = page_via_alertmanager(client, "FeatureStoreDown")
    t0 = started(db, incident_id)
    first, then = who(client, schedule_id, t0), who(client, schedule_id, t0 + timedelta(minutes=120))
    assert {first, then} == {"alice", "bob"}  # two-hour turns: two hours later it is the other one
    assert advance_escalations(runtime, t0 + timedelta(minutes=120)) == 1
    slack_ids = {"alice": "U0ALICE", "bob": "U0BOB"}
    assert dms(db, incident_id) == [slack_ids[str(first)], slack_ids[str(then)]]
    assert f"paged {then} (on call for 'primary', layer l1) by DM" in timeline(db, incident_id, "page")[-1][2]


def test_the_chain_repeats_k_times_then_stops(client: TestClient, runtime: Runtime, db: Engine) -> None:
    add_people(client)
    add_policy(client, "ml", [step(5, user="alice"), step(10, user="bob")], repeat=2)
    incident_id = page_via_alertmanager(client, "FeatureStoreDown")
    now = started(db, incident_id)
    for delay in (5, 10, 5, 10, 5):
        now += timedelta(minutes=delay)
        assert advance_escalations(runtime, now) == 1
    assert dms(db, incident_id) == ["U0ALICE", "U0BOB"] * 3
    assert advance_escalations(runtime, now + timedelta(days=1)) == 0
    state = escalation(db, incident_id)
    assert state is not None and state.state == "exhausted" and state.next_at is None
    assert timeline(db, incident_id, "escalation")[-1][2] == ("Escalation exhausted: every step ran 3 time(s) "
                                                              "and nobody acknowledged")
    assert _metric(runtime, "watchtower_escalations_total") == 5


def test_escalation_survives_a_restart(client: TestClient, runtime: Runtime, db: Engine) -> None:
    add_people(client)
    add_policy(client, "ml", [step(5, user="alice"), step(5, user="bob")])
    incident_id = page_via_alertmanager(client, "FeatureStoreDown")
    t0 = started(db, incident_id)
    # A new process: its own app and Runtime on the same database, nothing shared in memory.
    fresh: Runtime = create_app(runtime.settings.model_copy(), engine=db).state.runtime
    assert fresh is not runtime
    assert advance_escalations(fresh, t0 + timedelta(minutes=5)) == 1
    assert dms(db, incident_id) == ["U0ALICE", "U0BOB"]
    assert advance_escalations(runtime, t0 + timedelta(minutes=6)) == 0  # nothing is paged twice


def test_models_route_to_their_own_policy_or_the_default(client: TestClient, runtime: Runtime, db: Engine,
                                                         models: object) -> None:
    from tests import factories

    add_people(client)
    factories.register_tensor(client, models)  # type: ignore[arg-type]
    add_policy(client, "default", [step(5, user="alice")])
    add_policy(client, "churn-team", [step(5, user="bob")], default=False)
    assert client.get("/models/churn/escalation").json() == {"model": "churn", "policy": "default",
                                                             "source": "default"}
    routed = client.put("/models/churn/escalation", json={"policy": "churn-team"})
    assert routed.json() == {"model": "churn", "policy": "churn-team", "source": "model"}
    missing = client.put("/models/churn/escalation", json={"policy": "nope"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.policy"
    assert dms(db, page_via_alertmanager(client, "ChurnFeaturesStale", model="churn")) == ["U0BOB"]
    assert dms(db, page_via_alertmanager(client, "FeatureStoreDown")) == ["U0ALICE"]
    listed = {p["name"]: p["models"] for p in client.get("/escalation-policies").json()}
    assert listed == {"churn-team": ["churn"], "default": []}
    assert client.delete("/escalation-policies/churn-team").status_code == 409  # churn still routes there
    assert client.delete("/models/churn/escalation").json()["source"] == "default"
    assert client.delete("/escalation-policies/churn-team").status_code == 204


def test_the_api_refuses_bad_policies_naming_the_field(client: TestClient) -> None:
    add_people(client)
    two_hour_schedule(client)
    cases = [
        ({"steps": [step(5, schedule="nope")]}, "body.steps.0.targets.0.schedule"),
        ({"steps": [step(5, user="alice"), step(5, user="zed")]}, "body.steps.1.targets.0.user"),
        ({"steps": [step(0, user="alice")]}, "body.steps.0.delay_minutes"),
        ({"steps": [step(9001, user="alice")]}, "body.steps.0.delay_minutes"),
        ({"steps": [step(5, user="alice")], "repeat": 6}, "body.repeat"),
        ({"steps": []}, "body.steps"),
        ({"steps": [{"delay_minutes": 5, "targets": [{"user": "alice", "channel": "#x"}]}]},
         "body.steps.0.targets.0"),
    ]
    for extra, field in cases:
        response = client.post("/escalation-policies", json={"name": "ml"} | extra)
        assert response.status_code == 422, (extra, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], (field, response.json())
    ok = client.post("/escalation-policies", json={"name": "ml", "steps": [step(5, schedule="primary")],
                                                   "repeat": 5, "default": True})
    assert ok.status_code == 201, ok.text
    assert client.post("/escalation-policies", json={"name": "ml", "steps": [step(5, user="bob")]}).status_code == 409
    assert client.patch("/escalation-policies/ml", json={"steps": [step(5, user="zed")]}).status_code == 422
    assert client.get("/escalation-policies/ml").json()["steps"] == [step(5, schedule="primary")]
