"""Slack you can answer from: signed clicks do what they say as the person who clicked, and the message follows.

A real breach (pause, swap, incident, alert) is posted through the real slack-sdk WebClient to the conftest
recorder; clicks are signed the way Slack signs them (HMAC-SHA256 of `v0:<timestamp>:<body>`) and verified
by the app with slack-sdk's SignatureVerifier; the answers, edits and thread replies go out through the outbox
to the same recorder. SQLite and PostgreSQL.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.outbox import OutboxMessage
from alerts.slack.messages import (
    IncidentState,
    incident_actions,
    incident_message,
    mention,
    page_dm,
    thread_payload,
)
from alerts.slack.models import SlackMessage
from alerts.slack.store import incident_payload
from postmortems.models import Incident, TimelineEntry
from tests import factories
from tests.conftest import SlackRecorder
from watchtower.auth.models import User
from watchtower.clock import utcnow
from watchtower.delivery import deliver_outbox
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ORIGINAL_TS = "1700000000.000100"  # the recorder's answer to the first chat.postMessage
# The breach is the set-up, not what is tested: the native drift engine (Evidently takes seconds a pass, and
# tests/watchtower/test_monitor.py covers it).
DRIFT_ONLY = [{"detectors": [{"name": "native_drift"}, {"name": "stat_drift"}], "min_events": 100}]
HOSTILE = "<!channel> & <https://evil.example/|Open incident>"


@pytest.fixture
def slack_app(runtime: Runtime, slack: SlackRecorder) -> SlackRecorder:
    """Slack configured: bot token, the recorder as slack.com/api, and the app's signing secret."""
    runtime.settings.slack_token = SecretStr("xoxb-test")
    runtime.settings.slack_base_url = slack.base_url
    runtime.settings.slack_signing_secret = SecretStr(SECRET)
    return slack


@pytest.fixture
def from_slack(app: FastAPI) -> Iterator[TestClient]:
    """A client that sends what Slack sends: no bearer token."""
    with TestClient(app) as client:
        yield client


@pytest.fixture
def alice(client: TestClient) -> str:
    response = client.post("/users", json={"handle": "alice", "display_name": "Alice", "slack_user_id": "U0ALICE",
                                           "role": "responder"})
    assert response.status_code == 201, response.text
    return "U0ALICE"


@pytest.fixture
def breached(act_on_any_breach: None, client: TestClient, runtime: Runtime, models: factories.BuiltModels,
             slack_app: SlackRecorder) -> int:
    """A breach paused the pipeline, swapped to the fallback and opened an incident; its alert is queued."""
    factories.register_tensor(client, models, monitors=DRIFT_ONLY)
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.0))
    result = run_monitor(runtime, "churn", "default")
    assert result.incident_id is not None
    return result.incident_id


@pytest.fixture
def alerted(breached: int, runtime: Runtime, slack_app: SlackRecorder) -> tuple[int, dict[str, Any]]:
    """The breach's incident message is posted (and the recorder's calls cleared)."""
    assert deliver_outbox(runtime) == 1
    [posted] = slack_app.calls
    assert posted["path"] == "/api/chat.postMessage"
    slack_app.calls.clear()
    return breached, posted


def sign(body: str, *, secret: str = SECRET, age_s: int = 0) -> dict[str, str]:
    """The headers Slack sends: the request timestamp and v0=HMAC-SHA256(secret, "v0:<timestamp>:<body>")."""
    timestamp = str(int(time.time()) - age_s)
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}"}


def click(message: dict[str, Any], action_id: str, user: str, slack: SlackRecorder, hours: int | None = None) -> str:
    """The form body of a block_actions request for one element of the message, as Slack sends it."""
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    element = next(e for e in actions["elements"] if e["action_id"] == action_id)
    action: dict[str, Any] = {"action_id": action_id, "block_id": actions["block_id"], "type": element["type"],
                              "action_ts": "1700000100.000200"}
    if element["type"] == "button":
        action |= {"value": element["value"], "text": element["text"]}
    else:
        action["selected_option"] = next(o for o in element["options"] if json.loads(o["value"])["hours"] == hours)
    payload = {
        "type": "block_actions", "team": {"id": "T0", "domain": "acme"}, "api_app_id": "A0", "token": "legacy",
        "user": {"id": user, "username": "someone", "team_id": "T0"}, "trigger_id": "1.2.abc",
        "container": {"type": "message", "message_ts": ORIGINAL_TS, "channel_id": "C0TEST", "is_ephemeral": False},
        "channel": {"id": "C0TEST", "name": "ml-incidents"}, "message": {"ts": ORIGINAL_TS, **message},
        "response_url": slack.base_url.removesuffix("api/") + "actions/T0/1/secret", "actions": [action]}
    return urlencode({"payload": json.dumps(payload)})


def action_ids(message: dict[str, Any]) -> list[str]:
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    return [e["action_id"] for e in actions[0]["elements"]] if actions else []


def status(client: TestClient, incident_id: int) -> str:
    return str(client.get(f"/incidents/{incident_id}").json()["status"])


def outbox_count(db: Engine) -> int:
    with Session(db) as session:
        return int(session.exec(select(func.count()).select_from(OutboxMessage)).one())


def calls(slack: SlackRecorder, path: str) -> list[dict[str, Any]]:
    return [c["body"] for c in slack.calls if c["path"].endswith(path)]


def test_the_incident_message_offers_what_can_be_done_and_is_recorded(
        alerted: tuple[int, dict[str, Any]], db: Engine) -> None:
    incident_id, posted = alerted
    assert action_ids(posted["body"]) == ["ack", "resolve", "restore", "resume", "silence"]
    button = next(e for b in posted["body"]["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert json.loads(button["value"]) == {"incident_id": incident_id}
    silence = next(e for b in posted["body"]["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == "silence")
    assert silence["type"] == "static_select"
    assert [json.loads(o["value"])["hours"] for o in silence["options"]] == [1, 4, 24]
    assert "incident_message" not in posted["body"]  # our bookkeeping key is not sent to Slack
    with Session(db) as session:
        stored = session.get(SlackMessage, incident_id)
        assert stored is not None and (stored.channel, stored.ts) == ("C0TEST", ORIGINAL_TS)


def test_acknowledge_with_a_valid_signature_updates_the_message_and_replies_in_its_thread(
        alerted: tuple[int, dict[str, Any]], alice: str, from_slack: TestClient, client: TestClient,
        runtime: Runtime, slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted
    body = click(posted["body"], "ack", alice, slack_app)
    response = from_slack.post("/slack/interactions", content=body, headers=sign(body))
    assert response.status_code == 200, response.text

    incident = client.get(f"/incidents/{incident_id}").json()
    assert incident["status"] == "acknowledged"
    entry = incident["timeline"][-1]
    assert (entry["kind"], entry["author"], entry["source"]) == ("status", "alice", "human")
    acks = ("watchtower_acknowledgements_total", {}), ("watchtower_incident_stage_seconds_count",
                                                        {"stage": "acknowledge"})
    assert [runtime.metrics.registry.get_sample_value(n, labels) for n, labels in acks] == [1, 1]

    assert deliver_outbox(runtime) == 2
    [update] = calls(slack_app, "/chat.update")
    assert (update["channel"], update["ts"]) == ("C0TEST", ORIGINAL_TS)
    assert action_ids(update) == ["resolve", "restore", "resume", "silence"]  # acknowledged: no Acknowledge
    assert "acknowledged by alice" in json.dumps(update["blocks"])
    [reply] = calls(slack_app, "/chat.postMessage")
    assert (reply["channel"], reply["thread_ts"]) == ("C0TEST", ORIGINAL_TS)
    assert reply["text"].startswith("Acknowledged by alice")

    slack_app.calls.clear()  # the same (stale) button again: nothing happens, and only alice is told why
    response = from_slack.post("/slack/interactions", content=body, headers=sign(body))
    assert response.status_code == 200 and status(client, incident_id) == "acknowledged"
    assert deliver_outbox(runtime) == 1
    assert [runtime.metrics.registry.get_sample_value(n, labels) for n, labels in acks] == [1, 1]  # not again
    [answer] = slack_app.calls
    assert answer["path"] == "/actions/T0/1/secret"
    assert answer["body"]["response_type"] == "ephemeral" and "Nothing done" in answer["body"]["text"]


@pytest.mark.parametrize("case", ["forged", "five minutes old", "unsigned", "no secret configured"])
def test_a_bad_or_stale_signature_is_401_and_nothing_is_done(
        case: str, alerted: tuple[int, dict[str, Any]], alice: str, from_slack: TestClient, client: TestClient,
        runtime: Runtime, db: Engine, slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted
    body = click(posted["body"], "resolve", alice, slack_app)
    headers = {"forged": sign(body, secret="not-the-secret"), "five minutes old": sign(body, age_s=5 * 60 + 10),
               "unsigned": {"Content-Type": "application/x-www-form-urlencoded"},
               "no secret configured": sign(body)}[case]
    if case == "no secret configured":
        runtime.settings.slack_signing_secret = None
    before = outbox_count(db)
    response = from_slack.post("/slack/interactions", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "header.x-slack-signature"
    assert status(client, incident_id) == "open" and outbox_count(db) == before


def test_a_tampered_body_with_a_signature_for_another_body_is_401(
        alerted: tuple[int, dict[str, Any]], alice: str, from_slack: TestClient, client: TestClient,
        slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted
    signed = click(posted["body"], "ack", alice, slack_app)
    tampered = click(posted["body"], "resolve", alice, slack_app)
    response = from_slack.post("/slack/interactions", content=tampered, headers=sign(signed))
    assert response.status_code == 401 and status(client, incident_id) == "open"


def test_an_unknown_slack_user_is_asked_who_they_are_and_nothing_is_done(
        alerted: tuple[int, dict[str, Any]], from_slack: TestClient, client: TestClient, runtime: Runtime,
        db: Engine, slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted
    entries = len(client.get(f"/incidents/{incident_id}").json()["timeline"])
    body = click(posted["body"], "resolve", "U0STRANGER", slack_app)
    response = from_slack.post("/slack/interactions", content=body, headers=sign(body))
    assert response.status_code == 200
    incident = client.get(f"/incidents/{incident_id}").json()
    assert incident["status"] == "open" and len(incident["timeline"]) == entries
    assert deliver_outbox(runtime) == 1
    [answer] = slack_app.calls
    assert answer["path"] == "/actions/T0/1/secret"
    assert answer["body"]["response_type"] == "ephemeral" and answer["body"]["replace_original"] is False
    assert "does not know who you are" in answer["body"]["text"] and "U0STRANGER" in answer["body"]["text"]


def test_a_viewer_clicking_is_refused_and_every_click_is_audited(
        alerted: tuple[int, dict[str, Any]], alice: str, from_slack: TestClient, client: TestClient,
        runtime: Runtime, slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted
    client.post("/users", json={"handle": "vic", "display_name": "Vic", "slack_user_id": "U0VIC"})
    body = click(posted["body"], "resolve", "U0VIC", slack_app)
    assert from_slack.post("/slack/interactions", content=body, headers=sign(body)).status_code == 200
    assert status(client, incident_id) == "open"
    deliver_outbox(runtime)
    assert "needs the responder role" in slack_app.calls[-1]["body"]["text"]
    body = click(posted["body"], "ack", alice, slack_app)
    assert from_slack.post("/slack/interactions", content=body, headers=sign(body)).status_code == 200
    assert status(client, incident_id) == "acknowledged"
    clicks = [(e["actor"], e["route"], e["status"]) for e in client.get("/audit", params={"method": "SLACK"}).json()]
    assert clicks == [("alice", "slack:ack", 200), ("vic", "slack:resolve", 403)]


def test_restore_and_resume_buttons_follow_the_model_and_the_pipeline(
        alerted: tuple[int, dict[str, Any]], alice: str, from_slack: TestClient, client: TestClient,
        runtime: Runtime, slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted
    body = click(posted["body"], "restore", alice, slack_app)
    assert from_slack.post("/slack/interactions", content=body, headers=sign(body)).status_code == 200
    assert client.get("/models/churn").json()["active_role"] == "primary"
    assert deliver_outbox(runtime) == 2
    [update] = calls(slack_app, "/chat.update")
    assert action_ids(update) == ["ack", "resolve", "resume", "silence"]  # primary serves: no Restore
    [reply] = calls(slack_app, "/chat.postMessage")
    assert reply["thread_ts"] == ORIGINAL_TS and reply["text"].startswith("alice: serving restored to primary-v1")

    slack_app.calls.clear()
    body = click(update, "resume", alice, slack_app)
    assert from_slack.post("/slack/interactions", content=body, headers=sign(body)).status_code == 200
    assert client.get("/pipelines/churn").json()["paused"] is False
    assert deliver_outbox(runtime) == 2
    [update] = calls(slack_app, "/chat.update")
    assert action_ids(update) == ["ack", "resolve", "silence"]
    timeline = client.get(f"/incidents/{incident_id}").json()["timeline"]
    assert [(e["kind"], e["author"]) for e in timeline[-2:]] == [("restore", "alice"), ("resume", "alice")]

    slack_app.calls.clear()
    body = click(update, "resolve", alice, slack_app)
    assert from_slack.post("/slack/interactions", content=body, headers=sign(body)).status_code == 200
    assert status(client, incident_id) == "resolved"
    assert deliver_outbox(runtime) == 2
    [update] = calls(slack_app, "/chat.update")
    assert action_ids(update) == [] and "Resolved" in json.dumps(update["blocks"])


def test_a_change_before_the_alert_went_out_is_in_the_alert_and_its_thread(
        breached: int, client: TestClient, runtime: Runtime, slack_app: SlackRecorder) -> None:
    moved = client.post(f"/incidents/{breached}/status", json={"status": "acknowledged", "author": "bob",
                                                              "reason": "looking"})
    assert moved.status_code == 200
    assert deliver_outbox(runtime) == 2
    assert [c["path"] for c in slack_app.calls] == ["/api/chat.postMessage"] * 2  # no edit needed
    original, reply = (c["body"] for c in slack_app.calls)
    assert action_ids(original) == ["resolve", "restore", "resume", "silence"]
    assert "acknowledged by bob" in json.dumps(original["blocks"])
    assert reply["thread_ts"] == ORIGINAL_TS and reply["text"] == "Acknowledged by bob: looking"


def test_a_reply_waits_for_its_message_while_slack_is_down(
        breached: int, client: TestClient, runtime: Runtime, db: Engine, slack_app: SlackRecorder) -> None:
    slack_app.fail = True
    assert client.post(f"/incidents/{breached}/status", json={"status": "acknowledged", "author": "bob",
                                                              "reason": "looking"}).status_code == 200
    assert deliver_outbox(runtime) == 0
    assert len(slack_app.calls) == 1  # the alert failed; its reply did not try without a thread to go to
    with Session(db) as session:
        alert, reply = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        assert (alert.status, reply.status) == ("pending", "pending")
        assert "not posted yet" in (reply.last_error or "")
    slack_app.fail, slack_app.calls[:] = False, []
    assert deliver_outbox(runtime, now=utcnow() + timedelta(hours=1)) == 2  # every retry is due by then
    assert [c["path"] for c in slack_app.calls] == ["/api/chat.postMessage"] * 2
    assert slack_app.calls[1]["body"]["thread_ts"] == ORIGINAL_TS


def test_a_change_while_the_alert_is_being_sent_edits_it_after(
        breached: int, client: TestClient, runtime: Runtime, db: Engine, slack_app: SlackRecorder) -> None:
    with Session(db) as session:  # a deliverer has rendered the alert and is sending it
        alert = session.exec(select(OutboxMessage)).one()
        alert.status = "sending"
        session.add(alert)
        session.commit()
    assert client.post(f"/incidents/{breached}/status", json={"status": "acknowledged", "author": "bob",
                                                              "reason": "looking"}).status_code == 200
    with Session(db) as session:
        messages = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        assert [m.payload.get("method") for m in messages] == [None, "chat.update", "chat.postMessage"]
        messages[0].status = "pending"  # its send "ends": here, by sending it now
        session.add(messages[0])
        session.commit()
    assert deliver_outbox(runtime) == 3
    assert [c["path"] for c in slack_app.calls] == ["/api/chat.postMessage", "/api/chat.update",
                                                    "/api/chat.postMessage"]
    assert slack_app.calls[1]["body"]["ts"] == slack_app.calls[2]["body"]["thread_ts"] == ORIGINAL_TS


def test_edits_and_replies_of_a_message_that_never_went_out_are_skipped(
        breached: int, client: TestClient, runtime: Runtime, db: Engine, slack_app: SlackRecorder) -> None:
    runtime.settings.slack_token = None
    assert deliver_outbox(runtime) == 0  # no token: the alert is skipped (and logged)
    assert client.post(f"/incidents/{breached}/status", json={"status": "acknowledged", "author": "bob",
                                                              "reason": "looking"}).status_code == 200
    with Session(db) as session:
        assert [m.status for m in session.exec(select(OutboxMessage))] == ["skipped"]  # nothing more queued


def test_breached_again_goes_to_the_thread_once_per_human_action(
        alerted: tuple[int, dict[str, Any]], alice: str, from_slack: TestClient, client: TestClient,
        runtime: Runtime, slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted

    def breach_again(seed: int) -> None:
        factories.serve(client, "churn", factories.make_frame(300, seed=seed, shift=1.0))
        assert run_monitor(runtime, "churn", "default").incident_id == incident_id

    breach_again(6)  # nobody acted yet: the message is edited, the thread stays quiet
    deliver_outbox(runtime)
    assert [c["path"] for c in slack_app.calls] == ["/api/chat.update"]
    body = click(posted["body"], "ack", alice, slack_app)
    assert from_slack.post("/slack/interactions", content=body, headers=sign(body)).status_code == 200
    breach_again(7)  # after the ack: news, in the thread
    breach_again(8)  # and again: not news
    slack_app.calls.clear()
    deliver_outbox(runtime)
    replies = [c["text"] for c in calls(slack_app, "/chat.postMessage")]
    assert len(replies) == 2 and replies[0].startswith("Acknowledged by alice")
    assert replies[1].startswith("Breached again: Breached:")
    assert len(calls(slack_app, "/chat.update")) == 1  # one waiting edit shows every change


def test_no_slack_message_means_no_edits_queued(client: TestClient, db: Engine) -> None:
    filed = client.post("/incidents", json={"title": "manual", "author": "bob"}).json()
    assert client.post(f"/incidents/{filed['id']}/status",
                       json={"status": "acknowledged", "author": "bob", "reason": "mine"}).status_code == 200
    assert outbox_count(db) == 0


def test_buttons_depend_on_the_state() -> None:
    def ids(state: IncidentState) -> list[str]:
        block = incident_actions(7, state)
        return [e["action_id"] for e in block["elements"]] if block else []

    assert ids(IncidentState("open")) == ["ack", "resolve", "silence"]
    assert ids(IncidentState("open", fallback_of="churn")) == ["ack", "resolve", "restore", "silence"]
    assert ids(IncidentState("acknowledged", "alice", paused_pipeline="etl")) == ["resolve", "resume", "silence"]
    assert ids(IncidentState("resolved", "alice", fallback_of="churn", paused_pipeline="etl")) == []
    assert ids(IncidentState("postmortem_complete")) == []


def test_hostile_text_cannot_ping_or_forge_links(client: TestClient, db: Engine) -> None:
    filed = client.post("/incidents", json={"title": HOSTILE, "summary": "feature <!here> drifted",
                                            "author": "bob"}).json()
    with Session(db) as session:
        incident = session.get(Incident, filed["id"])
        assert incident is not None
        payload = incident_payload(session, incident, channel="#ml", public_url="http://watchtower.test",
                                   oncall=None)
        person = User(handle="eve", display_name="<!everyone>", slack_user_id="U0EVE")
        dm = page_dm(person, incident, "http://watchtower.test/postmortems/incidents/1")
    direct = incident_message(channel="#ml", incident_id=1, severity="SEV2", title=HOSTILE, summary=HOSTILE,
                              mitigations=[f"pipeline '{HOSTILE}' paused"], url="http://w.test/1", oncall=None,
                              similar=[HOSTILE], state=IncidentState("open", fallback_of=HOSTILE,
                                                                     paused_pipeline=HOSTILE))
    for message in (payload, dm, direct, thread_payload(1, f"Breached again: {HOSTILE}")):
        text = json.dumps(message)
        assert "<!" not in text and "<https://evil" not in text and "&lt;!channel&gt; &amp; &lt;https" in text
    assert mention(person) == "<@U0EVE>"
    assert mention(User(handle="mallory", display_name="<!here> Mallory")) == "&lt;!here&gt; Mallory"
    assert dm["channel"] == "U0EVE"


def test_page_dm_needs_a_slack_id(db: Engine) -> None:
    incident = Incident(id=3, title="t")
    with pytest.raises(ValueError, match="no Slack member id"):
        page_dm(User(handle="nobody", display_name="No Body"), incident, "http://w.test/3")


def test_a_payload_that_is_not_json_is_422_after_the_signature(from_slack: TestClient, slack_app: SlackRecorder,
                                                                 db: Engine) -> None:
    body = urlencode({"payload": "{not json"})
    response = from_slack.post("/slack/interactions", content=body, headers=sign(body))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.payload"
    body = urlencode({"payload": json.dumps({"type": "block_actions", "user": {}})})
    response = from_slack.post("/slack/interactions", content=body, headers=sign(body))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.payload.user.id"
    with Session(db) as session:
        assert session.exec(select(TimelineEntry).where(col(TimelineEntry.id) > 0)).first() is None


def test_silence_from_slack_creates_a_silence_that_holds_the_next_page(
        alerted: tuple[int, dict[str, Any]], alice: str, from_slack: TestClient, client: TestClient,
        runtime: Runtime, slack_app: SlackRecorder) -> None:
    incident_id, posted = alerted
    body = click(posted["body"], "silence", alice, slack_app, hours=4)
    response = from_slack.post("/slack/interactions", content=body, headers=sign(body))
    assert response.status_code == 200, response.text
    [silence] = client.get("/silences", params={"state": "active"}).json()
    assert silence["created_by"] == "alice" and f"#{incident_id}" in silence["comment"]
    assert [(m["name"], m["value"]) for m in silence["matchers"]] == [("model", "churn")]
    hours = (datetime.fromisoformat(silence["ends_at"]) - datetime.fromisoformat(silence["starts_at"]))
    assert hours.total_seconds() == 4 * 3600
    timeline = client.get(f"/incidents/{incident_id}").json()["timeline"]
    assert any("alice" in e["author"] or "alice" in e["text"] for e in timeline if "ilence" in e["text"])
    assert deliver_outbox(runtime) >= 1
    assert calls(slack_app, "/chat.update"), "the original message shows the silence"
