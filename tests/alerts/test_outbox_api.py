"""A message that gave up is counted, listed, shown on its incident's page, and re-sent by an operator."""

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.outbox import OutboxMessage
from tests.alerts.test_outbox import T0, add_message, read
from tests.conftest import SlackRecorder
from tests.postmortems.helpers import file
from tests.watchtower.signin_helpers import add_person, try_sign_in
from watchtower.delivery import deliver_outbox
from watchtower.gauges import read_operational
from watchtower.runtime import Runtime


def gauge(runtime: Runtime, kind: str, status: str) -> float | None:
    return runtime.metrics.registry.get_sample_value("watchtower_outbox_messages", {"kind": kind, "status": status})


def fail_for_a_day(client: TestClient, runtime: Runtime, slack: SlackRecorder) -> tuple[int, int]:
    """An incident whose Slack alert kept failing for WATCHTOWER_OUTBOX_RETRY_FOR_S: (incident id, message id)."""
    runtime.settings.slack_token, runtime.settings.slack_base_url = SecretStr("xoxb-test"), slack.base_url
    incident_id = file(client, "Churn model drifted")["id"]
    message_id = add_message(runtime.engine, incident_id=incident_id)
    slack.fail = True
    assert runtime.settings.outbox_retry_for_s == 86400
    for at in (T0, T0 + timedelta(hours=23, minutes=59), T0 + timedelta(hours=24)):
        assert deliver_outbox(runtime, now=at) == 0
    slack.fail = False
    return incident_id, message_id


def test_a_failed_message_is_counted_listed_retried_and_delivered(client: TestClient, runtime: Runtime,
                                                                   db: Engine, slack: SlackRecorder) -> None:
    incident_id, message_id = fail_for_a_day(client, runtime, slack)
    message = read(db, message_id)
    assert (message.status, message.attempts) == ("failed", 3)
    assert runtime.metrics.registry.get_sample_value("watchtower_delivery_failures_total", {"kind": "slack"}) == 3
    assert gauge(runtime, "slack", "failed") == 1 and gauge(runtime, "webhook", "failed") == 0

    listed = client.get("/outbox", params={"status": "failed"}).json()
    assert listed["total"] == 1 and [m["id"] for m in listed["items"]] == [message_id]
    item = listed["items"][0]
    assert item["target"] == "#ml" and item["summary"] == "drift on churn" and item["incident_id"] == incident_id
    assert "internal_error" in item["last_error"] and "payload" not in item
    assert client.get("/outbox", params={"status": "pending"}).json()["total"] == 0

    retried = client.post(f"/outbox/{message_id}/retry", json={"author": "ana", "reason": "Slack is back"})
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending" and retried.json()["first_attempt_at"] is None
    timeline = client.get(f"/incidents/{incident_id}").json()["timeline"]
    assert timeline[-1]["kind"] == "alert_retry" and timeline[-1]["author"] == "ana"
    assert "Slack is back" in timeline[-1]["text"] and "internal_error" in timeline[-1]["text"]

    assert deliver_outbox(runtime) == 1  # due now, by the wall clock the retry used
    assert read(db, message_id).status == "sent" and len(slack.calls) == 4
    assert gauge(runtime, "slack", "failed") == 0 and gauge(runtime, "slack", "sent") == 1
    assert read(db, message_id).idempotency_key == message.idempotency_key  # the same message, not a copy


def test_retry_refuses_what_cannot_be_retried(client: TestClient, db: Engine) -> None:
    pending = add_message(db)
    conflict = client.post(f"/outbox/{pending}/retry")
    assert conflict.status_code == 409 and conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["errors"][0]["field"] == "path.message_id"
    assert client.post("/outbox/999999/retry").status_code == 404
    assert client.post("/outbox/99999999999999999999/retry").status_code == 422
    assert client.post(f"/outbox/{pending}/retry", headers={"Authorization": "Bearer nope"}).status_code == 401
    bad = client.get("/outbox", params={"status": "breach"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["query.status"]


def test_listing_is_paginated_newest_first(client: TestClient, db: Engine) -> None:
    ids = [add_message(db, payload={"channel": "#ml", "text": f"alert {i}"}) for i in range(5)]
    first = client.get("/outbox", params={"status": "pending", "limit": 2}).json()
    second = client.get("/outbox", params={"status": "pending", "limit": 2, "offset": 2}).json()
    assert first["total"] == second["total"] == 5
    assert [m["id"] for m in first["items"] + second["items"]] == ids[::-1][:4]


def test_oldest_pending_age_is_read_from_the_database(db: Engine) -> None:
    add_message(db)
    later = add_message(db)
    with Session(db) as session:  # a newer message does not make the backlog look younger
        message = session.get(OutboxMessage, later)
        assert message is not None
        message.created_at = T0 + timedelta(minutes=5)
        session.add(message)
        session.commit()
    state = read_operational(db, now=T0 + timedelta(seconds=90))
    assert state["watchtower_outbox_oldest_pending_age_seconds"] == [({}, 90.0)]
    assert ({"kind": "slack", "status": "pending"}, 2.0) in state["watchtower_outbox_messages"]
    assert ({"kind": "webhook", "status": "failed"}, 0.0) in state["watchtower_outbox_messages"]


def test_the_incident_page_shows_an_alert_that_never_went_out_and_retries_it(
        client: TestClient, runtime: Runtime, db: Engine, slack: SlackRecorder) -> None:
    incident_id, message_id = fail_for_a_day(client, runtime, slack)
    page_url = f"/postmortems/incidents/{incident_id}"
    anonymous = client.get(page_url).text
    assert "Alerts that never went out" in anonymous and "internal_error" in anonymous
    add_person(db, "ada")
    assert try_sign_in(client, "ada").status_code == 303
    page = client.get(page_url).text
    action = f"/postmortems/incidents/{incident_id}/outbox/{message_id}/retry"
    assert f'action="{action}"' in page and ">Retry</button>" in page
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert csrf is not None
    assert client.post(action, data={"csrf": "forged"}, follow_redirects=False).status_code == 401
    assert client.post(f"/postmortems/incidents/{incident_id + 1}/outbox/{message_id}/retry",
                       data={"csrf": csrf.group(1)}, follow_redirects=False).status_code == 404
    done = client.post(action, data={"csrf": csrf.group(1)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"{page_url}#alerts"
    assert read(db, message_id).status == "pending"
    after = client.get(page_url).text
    assert "Alerts that never went out" not in after and "ada queued the failed slack alert" in after
