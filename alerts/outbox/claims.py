"""Claim a message before sending it, settle it after: each in its own short, committed transaction.

A claim marks one due message `sending` for one deliverer until its claim expires, and is committed before
the send, so another process (or a second pass) never picks it up meanwhile: on PostgreSQL the due row is
locked `FOR UPDATE SKIP LOCKED`, so concurrent deliverers take different rows; on SQLite writers are
serialised (BEGIN IMMEDIATE) and the UPDATE re-checks `status = 'pending'`. Settling is retried a few
times if its commit fails, and never re-sends. A process that dies between send and settle leaves the
message `sending`; once its claim has expired it goes back to `pending`, once, with a note: delivery is
at least once, and a duplicate needs a crash (or a database outage longer than the settle retries).
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, func, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from alerts.outbox.models import OutboxMessage, OutboxStatus
from watchtower.db import writer

log = logging.getLogger(__name__)
TABLE: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
SETTLE_RETRY_DELAYS_S = (0.2, 1.0, 3.0)


@dataclass(frozen=True)
class Claim:
    """One message this deliverer now owns, as it was claimed."""

    id: int
    kind: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    first_attempt_at: datetime
    incident_id: int | None
    worker: str


@dataclass(frozen=True)
class Outcome:
    """What the send did, as the columns to settle."""

    status: OutboxStatus
    last_error: str | None = None
    result: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None

    def values(self) -> dict[str, Any]:
        """The columns to set; a success keeps the last error (a crash note stays readable)."""
        values: dict[str, Any] = {"status": self.status.value}
        if self.status == OutboxStatus.SENT:
            values |= {"result": self.result, "sent_at": self.sent_at}
        else:
            values["last_error"] = self.last_error
        if self.next_attempt_at is not None:
            values["next_attempt_at"] = self.next_attempt_at
        return values


def _locked(engine: Engine, query: Select[Any]) -> Select[Any]:
    """Skip rows another deliverer holds (PostgreSQL); SQLite has one writer at a time anyway."""
    return query.with_for_update(skip_locked=True) if engine.dialect.name == "postgresql" else query


def claim_next(engine: Engine, worker: str, *, due_by: datetime, now: datetime, ttl_s: float) -> Claim | None:
    """Mark the oldest message due by `due_by` as being sent by `worker`, count the attempt, and commit."""
    c, d = TABLE.c, TABLE.alias("due").c  # an alias, so the subquery is not correlated with the UPDATE's table
    due = _locked(engine, select(d.id).where(d.status == OutboxStatus.PENDING.value, d.next_attempt_at <= due_by)
                  .order_by(d.id).limit(1))
    claim = (update(TABLE).where(c.id == due.scalar_subquery(), c.status == OutboxStatus.PENDING.value)
             .values(status=OutboxStatus.SENDING.value, claimed_by=worker,
                     claim_expires_at=now + timedelta(seconds=ttl_s), attempts=c.attempts + 1,
                     first_attempt_at=func.coalesce(c.first_attempt_at, literal(now, c.first_attempt_at.type)))
             .returning(c.id, c.kind, c.payload, c.idempotency_key, c.attempts, c.first_attempt_at, c.incident_id))
    with writer(engine).begin() as conn:
        row = conn.execute(claim).first()
    if row is None:
        return None
    return Claim(row.id, row.kind, row.payload, row.idempotency_key, row.attempts, row.first_attempt_at,
                 row.incident_id, worker)


def settle(engine: Engine, claim: Claim, outcome: Outcome, *,
           retry_delays_s: Sequence[float] = SETTLE_RETRY_DELAYS_S,
           sleep: Callable[[float], None] = time.sleep) -> bool:
    """Record the outcome if the claim is still ours; retry a failed commit, then raise. Never sends."""
    c = TABLE.c
    statement = (update(TABLE).where(c.id == claim.id, c.status == OutboxStatus.SENDING.value,
                                     c.claimed_by == claim.worker)
                 .values(claimed_by=None, claim_expires_at=None, **outcome.values()))
    for delay in (*retry_delays_s, None):
        try:
            with writer(engine).begin() as conn:
                settled = conn.execute(statement).rowcount == 1
            break
        except OperationalError as exc:  # "database is locked", a dropped connection: the send is done, settle again
            if delay is None:
                log.error("could not record that %s message %s was %s; it stays sending until its claim expires",
                          claim.kind, claim.id, outcome.status.value)
                raise
            log.warning("settling %s message %s failed, retrying in %s s: %s", claim.kind, claim.id, delay, exc)
            sleep(delay)
    if not settled:  # our claim expired and another deliverer recovered the message: its record wins
        log.warning("%s message %s was no longer claimed by %s; outcome %s not recorded",
                    claim.kind, claim.id, claim.worker, outcome.status.value)
    return settled


def recover_expired(engine: Engine, now: datetime) -> int:
    """Put messages whose claim expired while `sending` back to pending, with a note; return how many."""
    c = TABLE.c
    stuck = _locked(engine, select(c.id, c.kind, c.claimed_by, c.claim_expires_at)
                    .where(c.status == OutboxStatus.SENDING.value, c.claim_expires_at < now).order_by(c.id))
    with writer(engine).begin() as conn:
        rows = conn.execute(stuck).all()
        for row in rows:
            note = (f"outcome unknown after crash: claimed by {row.claimed_by} until "
                    f"{row.claim_expires_at.isoformat()} and never settled; sending again (at least once)")
            log.warning("%s message %s: %s", row.kind, row.id, note)
            conn.execute(update(TABLE).where(c.id == row.id, c.status == OutboxStatus.SENDING.value)
                         .values(status=OutboxStatus.PENDING.value, claimed_by=None, claim_expires_at=None,
                                 next_attempt_at=now, last_error=note))
    return len(rows)
