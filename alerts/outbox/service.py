"""Read the outbox and re-send what gave up: for the API and the incident page."""

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, col, select

from alerts.outbox.models import OutboxMessage, OutboxStatus
from postmortems.service import add_entry
from watchtower.errors import Conflict, NotFound, field_error

RETRYABLE = (OutboxStatus.FAILED, OutboxStatus.SKIPPED)
UNDELIVERED = (OutboxStatus.FAILED, OutboxStatus.SKIPPED)


class OutboxMessageRead(BaseModel):
    """A message without its payload: the webhook URL may carry a secret, and reads are open."""

    id: int
    kind: str
    status: OutboxStatus
    target: str  # the Slack channel, or the webhook's host
    summary: str  # the Slack text, or the webhook's event
    incident_id: int | None
    idempotency_key: str
    attempts: int
    last_error: str | None
    result: str | None
    created_at: datetime
    first_attempt_at: datetime | None
    next_attempt_at: datetime
    sent_at: datetime | None
    claimed_by: str | None
    claim_expires_at: datetime | None


class OutboxPage(BaseModel):
    """One page of messages and how many match in all."""

    total: int
    limit: int
    offset: int
    items: list[OutboxMessageRead]


def message_read(message: OutboxMessage) -> OutboxMessageRead:
    """The API view of a message."""
    assert message.id is not None
    payload: dict[str, Any] = message.payload
    if message.kind == "webhook":
        target = urlsplit(str(payload.get("url", ""))).netloc
        summary = str((payload.get("body") or {}).get("event", ""))
    else:
        target, summary = str(payload.get("channel", "")), str(payload.get("text", ""))
    return OutboxMessageRead(target=target, summary=summary,
                             **message.model_dump(exclude={"payload", "status"}), status=OutboxStatus(message.status))


def list_messages(session: Session, *, status: OutboxStatus | None, kind: str | None, incident_id: int | None,
                  limit: int, offset: int) -> OutboxPage:
    """Messages newest first, filtered by status, kind and incident."""
    query = select(OutboxMessage)
    if status is not None:
        query = query.where(OutboxMessage.status == status.value)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    if incident_id is not None:
        query = query.where(OutboxMessage.incident_id == incident_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(OutboxMessage.id).desc()).limit(limit).offset(offset)).all()
    return OutboxPage(total=total, limit=limit, offset=offset, items=[message_read(m) for m in rows])


def undelivered(session: Session, incident_id: int) -> list[OutboxMessageRead]:
    """An incident's messages that never went out (failed, or skipped for want of a sender)."""
    rows = session.exec(select(OutboxMessage).where(OutboxMessage.incident_id == incident_id,
                                                    col(OutboxMessage.status).in_([s.value for s in UNDELIVERED]))
                        .order_by(col(OutboxMessage.id))).all()
    return [message_read(m) for m in rows]


def retry_message(session: Session, message_id: int, *, author: str, reason: str | None, now: datetime,
                  incident_id: int | None = None) -> OutboxMessage:
    """Queue a failed or skipped message again, due now, with a fresh retry window; note it on its incident."""
    message = session.get(OutboxMessage, message_id, with_for_update=True)  # two operators: the second gets 409
    if message is None or (incident_id is not None and message.incident_id != incident_id):
        raise NotFound(f"no outbox message {message_id}"
                       + (f" for incident {incident_id}" if incident_id is not None else ""))
    if message.status not in RETRYABLE:
        raise Conflict(f"outbox message {message_id} is {message.status}; only failed or skipped messages "
                       "can be retried", errors=[field_error("path.message_id", f"status is {message.status}")])
    previous, error = message.status, message.last_error
    message.status, message.next_attempt_at, message.first_attempt_at = OutboxStatus.PENDING.value, now, None
    message.claimed_by = message.claim_expires_at = None
    session.add(message)
    if message.incident_id is not None:
        text = (f"{author} queued the {previous} {message.kind} alert (message {message_id}) again"
                + (f": {reason}" if reason else "") + (f". Last error: {error}" if error else ""))
        add_entry(session, message.incident_id, "alert_retry", text[:4000], source="human", author=author,
                  details={"message_id": message_id, "previous_status": previous}, at=now)
    session.flush()
    return message
