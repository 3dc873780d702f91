"""Outgoing messages (Slack, webhooks) written in the same transaction as what caused them.

A job delivers them; a failure keeps the row, counts it and retries with backoff,
so a dead Slack never loses an alert and never stops a monitor pass.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from watchtower.clock import utcnow

log = logging.getLogger(__name__)


class OutboxMessage(SQLModel, table=True):
    """A message waiting to go out (or that went, or gave up)."""

    __tablename__ = "outbox_message"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # slack | webhook
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=20, index=True)  # pending | sent | skipped | failed
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    next_attempt_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class Skipped(Exception):
    """Raised by a sender that is not configured: the message is logged and not retried."""


Sender = Callable[[dict[str, Any]], str]


def enqueue(session: Session, kind: str, payload: dict[str, Any], incident_id: int | None = None) -> None:
    """Add a message to the outbox inside the caller's transaction."""
    session.add(OutboxMessage(kind=kind, payload=payload, incident_id=incident_id))


def deliver_pending(
    engine: Engine,
    senders: dict[str, Sender],
    *,
    max_attempts: int,
    now: datetime | None = None,
    on_failure: Callable[[str], None] | None = None,
) -> int:
    """Try every due message once; return how many were sent."""
    now = now or utcnow()
    with Session(engine) as session:
        due = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", col(OutboxMessage.next_attempt_at) <= now)
            .order_by(col(OutboxMessage.id))
            .limit(100)
        ).all()
        sent = 0
        for message in due:
            message.attempts += 1
            try:
                detail = senders[message.kind](message.payload)
            except Skipped as skipped:
                message.status, message.last_error = "skipped", str(skipped)
                log.warning("%s message %s not sent: %s", message.kind, message.id, skipped)
            except Exception as exc:  # the loop must go on: record, count, retry later
                message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                backoff = timedelta(seconds=min(2 ** message.attempts * 5, 3600))
                message.next_attempt_at = now + backoff
                if message.attempts >= max_attempts:
                    message.status = "failed"
                log.warning("%s message %s failed (attempt %s): %s",
                            message.kind, message.id, message.attempts, message.last_error)
                if on_failure:
                    on_failure(message.kind)
            else:
                message.status, message.sent_at, message.last_error = "sent", now, detail
                sent += 1
            session.add(message)
            session.commit()
        return sent
