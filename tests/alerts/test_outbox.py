"""The outbox delivers each message once: claimed before the send, settled after, retried as the receiver asks.

Real slack-sdk WebClient and httpx calls to the conftest recorders, on SQLite and PostgreSQL; every pass gets
its `now`, so nothing sleeps to wait for a retry.
"""

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from alerts.outbox import OutboxMessage, Sender
from alerts.outbox.backoff import parse_retry_after, retry_delay_s
from alerts.outbox.claims import Outcome, claim_next, settle
from alerts.outbox.delivery import RetryPolicy, deliver_pending
from alerts.outbox.models import OutboxStatus
from alerts.slack.sender import SlackSender
from alerts.webhook import WebhookSender
from tests.conftest import SlackRecorder

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def add_message(engine: Engine, kind: str = "slack", payload: dict[str, Any] | None = None,
                incident_id: int | None = None) -> int:
    """One pending message, due at T0."""
    with Session(engine) as session:
        message = OutboxMessage(kind=kind, payload=payload or {"channel": "#ml", "text": "drift on churn"},
                                incident_id=incident_id, next_attempt_at=T0, created_at=T0)
        session.add(message)
        session.commit()
        assert message.id is not None
        return message.id


def webhook_payload(webhook: SlackRecorder) -> dict[str, Any]:
    return {"url": webhook.base_url.removesuffix("api/") + "hooks/pause",
            "body": {"event": "pipeline.paused", "pipeline": "churn-training"}}


def senders(slack: SlackRecorder | None = None) -> dict[str, Sender]:
    return {"slack": SlackSender("xoxb-test", slack.base_url if slack else "http://127.0.0.1:9/", 5),
            "webhook": WebhookSender(5)}


def read(engine: Engine, message_id: int) -> OutboxMessage:
    with Session(engine) as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        return message


def header(call: dict[str, Any], name: str) -> str | None:
    return next((v for k, v in call["headers"].items() if k.lower() == name.lower()), None)


def test_two_deliverers_at_once_send_each_message_exactly_once(db: Engine, slack: SlackRecorder) -> None:
    texts = [f"alert {i}" for i in range(30)]
    ids = [add_message(db, payload={"channel": "#ml", "text": text}) for text in texts]
    slack.delay_s = 0.01  # slow enough that both deliverers are sending at the same time
    start, sent, errors = threading.Barrier(2), [0, 0], []

    def deliver(i: int) -> None:
        start.wait()
        try:
            sent[i] = deliver_pending(db, senders(slack), now=T0, worker=f"replica-{i}")
        except Exception as exc:  # noqa: BLE001 (reported below, so a crash fails the test with its reason)
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(call["body"]["text"] for call in slack.calls) == sorted(texts)
    assert sum(sent) == len(texts)
    rows = [read(db, i) for i in ids]
    assert {(m.status, m.attempts, m.claimed_by) for m in rows} == {("sent", 1, None)}


def test_a_failed_settle_commit_is_retried_and_never_resends(db: Engine, slack: SlackRecorder) -> None:
    message_id = add_message(db)
    failures: list[str] = []

    def note_settle(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE outbox_message") and "sent_at" in statement:
            conn.info["settling"] = True

    def fail_first_settle_commit(conn: Any) -> None:
        if conn.info.pop("settling", False) and not failures:
            failures.append("settle commit")
            raise OperationalError("COMMIT", {}, Exception("database is locked"))

    event.listen(db, "before_cursor_execute", note_settle)
    event.listen(db, "commit", fail_first_settle_commit)
    try:
        assert deliver_pending(db, senders(slack), now=T0) == 1
    finally:
        event.remove(db, "before_cursor_execute", note_settle)
        event.remove(db, "commit", fail_first_settle_commit)
    assert failures == ["settle commit"]
    message = read(db, message_id)
    assert (message.status, message.attempts, message.claimed_by) == ("sent", 1, None)
    assert deliver_pending(db, senders(slack), now=T0 + timedelta(days=2)) == 0
    assert len(slack.calls) == 1


def test_slack_429_retry_after_is_honoured(db: Engine, slack: SlackRecorder) -> None:
    message_id = add_message(db)
    slack.script = [(429, {"Retry-After": "120"}, {"ok": False, "error": "ratelimited"})]
    assert deliver_pending(db, senders(slack), now=T0) == 0
    message = read(db, message_id)
    assert message.status == "pending" and message.next_attempt_at >= T0 + timedelta(seconds=120)
    assert "429" in (message.last_error or "")
    assert deliver_pending(db, senders(slack), now=T0 + timedelta(seconds=119)) == 0
    assert len(slack.calls) == 1  # nothing sent before Slack said to come back
    assert deliver_pending(db, senders(slack), now=T0 + timedelta(seconds=120)) == 1
    assert len(slack.calls) == 2 and read(db, message_id).status == "sent"


def test_webhook_retry_after_and_one_idempotency_key_across_attempts(db: Engine, webhook: SlackRecorder) -> None:
    payload = webhook_payload(webhook)
    message_id = add_message(db, kind="webhook", payload=payload)
    webhook.script = [(503, {"Retry-After": "300"}, {}), (500, {}, {})]
    assert deliver_pending(db, senders(), now=T0) == 0
    assert read(db, message_id).next_attempt_at >= T0 + timedelta(seconds=300)
    assert deliver_pending(db, senders(), now=T0 + timedelta(seconds=299)) == 0
    assert len(webhook.calls) == 1
    assert deliver_pending(db, senders(), now=T0 + timedelta(seconds=300)) == 0  # 500: plain backoff
    failed = read(db, message_id)
    assert failed.next_attempt_at == T0 + timedelta(seconds=300 + 10)  # 2nd attempt: 10 s
    assert "500" in (failed.last_error or "") and "/hooks/" not in (failed.last_error or "")  # a path may be secret
    assert deliver_pending(db, senders(), now=T0 + timedelta(seconds=310)) == 1
    key = read(db, message_id).idempotency_key
    assert len(key) == 32
    assert [header(call, "Idempotency-Key") for call in webhook.calls] == [key, key, key]
    assert [call["body"] for call in webhook.calls] == [payload["body"]] * 3


def test_retry_after_values_and_backoff() -> None:
    assert parse_retry_after("120", T0) == 120
    assert parse_retry_after("Sat, 28 Nov 2026 12:10:00 GMT", T0) == 600
    assert parse_retry_after("Sat, 28 Nov 2026 11:00:00 GMT", T0) == 0  # already past: try now
    assert parse_retry_after("soon", T0) is None and parse_retry_after(None, T0) is None
    assert retry_delay_s(1, 86400, cap_s=300) == 3600  # an hour at most, whatever the receiver says
    assert retry_delay_s(1, 0, cap_s=300) == 5  # never a busy loop
    assert [retry_delay_s(n, None, cap_s=300) for n in (1, 2, 3, 6, 7, 20)] == [5, 10, 20, 160, 300, 300]


def test_a_message_fails_only_after_the_retry_window(db: Engine, slack: SlackRecorder) -> None:
    message_id = add_message(db)
    slack.fail = True
    policy = RetryPolicy(retry_for_s=3600, max_backoff_s=300)
    failures: list[str] = []
    for minutes in (0, 30, 59):
        deliver_pending(db, senders(slack), policy=policy, now=T0 + timedelta(minutes=minutes),
                        on_failure=failures.append)
        assert read(db, message_id).status == "pending"
    deliver_pending(db, senders(slack), policy=policy, now=T0 + timedelta(minutes=60), on_failure=failures.append)
    message = read(db, message_id)
    assert (message.status, message.attempts, message.first_attempt_at) == ("failed", 4, T0)
    assert failures == ["slack"] * 4 and "internal_error" in (message.last_error or "")
    assert deliver_pending(db, senders(slack), now=T0 + timedelta(days=3)) == 0
    assert len(slack.calls) == 4  # failed means nothing more is sent until someone retries it


def test_a_crash_left_sending_message_is_sent_again_once_its_claim_expires(db: Engine, slack: SlackRecorder) -> None:
    message_id = add_message(db)
    claim = claim_next(db, "crashed-replica", due_by=T0, now=T0, ttl_s=300)  # claimed, then the process died
    assert claim is not None and claim.id == message_id and claim.attempts == 1
    assert read(db, message_id).status == "sending"
    assert deliver_pending(db, senders(slack), now=T0 + timedelta(seconds=299)) == 0
    assert slack.calls == [] and read(db, message_id).status == "sending"
    assert deliver_pending(db, senders(slack), now=T0 + timedelta(seconds=301)) == 1
    message = read(db, message_id)
    assert (message.status, message.attempts, len(slack.calls)) == ("sent", 2, 1)
    assert "outcome unknown after crash" in (message.last_error or "")
    assert "crashed-replica" in (message.last_error or "")
    # The dead replica's settle, had it come late, must not overwrite what the new owner recorded.
    assert settle(db, claim, Outcome(OutboxStatus.PENDING, last_error="late")) is False
    assert read(db, message_id).status == "sent"
    assert deliver_pending(db, senders(slack), now=T0 + timedelta(days=1)) == 0 and len(slack.calls) == 1


def test_one_failing_message_does_not_stop_the_others(db: Engine, slack: SlackRecorder) -> None:
    broken = add_message(db, kind="pager")  # no sender for this kind
    fine = add_message(db)
    assert deliver_pending(db, senders(slack), now=T0) == 1
    assert read(db, broken).status == "pending" and "KeyError" in (read(db, broken).last_error or "")
    assert read(db, fine).status == "sent"
    with Session(db) as session:
        assert session.exec(select(OutboxMessage.status).where(OutboxMessage.status == "sending")).all() == []
