"""The outbox table: outgoing messages (Slack, webhooks) written in the same transaction as what caused them."""

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, Session, SQLModel

from watchtower.clock import utcnow

KINDS = ("slack", "webhook")  # the kinds watchtower.delivery has senders for


class OutboxStatus(StrEnum):
    """Where a message is: waiting, claimed by one deliverer, or settled."""

    PENDING = "pending"  # due at next_attempt_at
    SENDING = "sending"  # claimed by claimed_by until claim_expires_at; the send is under way
    SENT = "sent"
    SKIPPED = "skipped"  # its sender is not configured (no Slack token): logged, not retried
    FAILED = "failed"  # still failing after the retry window; re-sent only by POST /outbox/{id}/retry


class OutboxMessage(SQLModel, table=True):
    """A message waiting to go out (or that went, or gave up)."""

    __tablename__ = "outbox_message"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # slack | webhook
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.PENDING, max_length=20, index=True)
    # Sent with every attempt of this message (webhooks: the Idempotency-Key header), so a receiver can
    # drop a repeat that an at-least-once delivery let through.
    idempotency_key: str = Field(default_factory=lambda: uuid4().hex, max_length=64, unique=True, index=True)
    attempts: int = 0  # counted when a deliverer claims the message, before it sends
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the receiver's answer
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    first_attempt_at: datetime | None = None  # start of the retry window (reset by a manual retry)
    claimed_by: str | None = Field(default=None, max_length=200)
    claim_expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class Skipped(Exception):
    """Raised by a sender that is not configured: the message is logged and not retried."""


class RetryLater(Exception):
    """Raised by a sender when the receiver said when to come back (429/503 with Retry-After)."""

    def __init__(self, message: str, after_s: float) -> None:
        super().__init__(message)
        self.after_s = after_s


def enqueue(session: Session, kind: str, payload: dict[str, Any], incident_id: int | None = None) -> None:
    """Add a message to the outbox inside the caller's transaction."""
    session.add(OutboxMessage(kind=kind, payload=payload, incident_id=incident_id))
