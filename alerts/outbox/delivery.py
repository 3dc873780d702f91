"""One delivery pass: recover crashed claims, then claim, send and settle due messages one at a time."""

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

from sqlalchemy.engine import Engine

from alerts.outbox import Sender
from alerts.outbox.backoff import retry_delay_s
from alerts.outbox.claims import Claim, Outcome, claim_next, recover_expired, settle
from alerts.outbox.models import OutboxStatus, RetryLater, Skipped
from watchtower.clock import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a failing message is retried, and how long a claim lasts."""

    retry_for_s: float = 86400.0  # after this long since the first attempt, a failure is final: `failed`
    max_backoff_s: float = 300.0
    claim_ttl_s: float = 300.0  # longer than any send can take, or a slow send would be sent twice
    batch: int = 100  # messages per pass at most, so one pass cannot run for ever


def worker_id() -> str:
    """Who holds a claim: host, process and pass, for the logs and the claimed_by column."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


def deliver_pending(
    engine: Engine,
    senders: dict[str, Sender],
    *,
    policy: RetryPolicy | None = None,
    now: datetime | None = None,
    worker: str | None = None,
    on_failure: Callable[[str], None] | None = None,
) -> int:
    """Send every message due now, each once; return how many were sent.

    `now` fixes the clock (tests); otherwise each claim and settle reads the time when it happens. One
    message's failure never stops the others; a database error propagates once settling has been retried.
    """
    policy = policy or RetryPolicy()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    worker = worker or worker_id()
    recover_expired(engine, clock())
    due_by = clock()  # fixed for the pass: a message retried in this pass is due after it, never twice in it
    sent = 0
    for _ in range(policy.batch):
        claim = claim_next(engine, worker, due_by=due_by, now=clock(), ttl_s=policy.claim_ttl_s)
        if claim is None:
            break
        outcome = attempt(claim, senders, clock, policy)
        if outcome.status in (OutboxStatus.PENDING, OutboxStatus.FAILED) and on_failure is not None:
            on_failure(claim.kind)
        settle(engine, claim, outcome)
        sent += outcome.status == OutboxStatus.SENT
    return sent


def attempt(claim: Claim, senders: dict[str, Sender], clock: Callable[[], datetime], policy: RetryPolicy) -> Outcome:
    """Send a claimed message once and say what to record; never raises for a failed send."""
    try:
        detail = senders[claim.kind](claim.payload, claim.idempotency_key)
    except Skipped as skipped:
        log.warning("%s message %s not sent: %s", claim.kind, claim.id, skipped)
        return Outcome(OutboxStatus.SKIPPED, last_error=str(skipped))
    except Exception as exc:  # the loop must go on: record, count, retry later
        return _failed(claim, exc, clock(), policy)
    return Outcome(OutboxStatus.SENT, result=detail, sent_at=clock())


def _failed(claim: Claim, exc: Exception, now: datetime, policy: RetryPolicy) -> Outcome:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    retry_after = exc.after_s if isinstance(exc, RetryLater) else None
    if now >= claim.first_attempt_at + timedelta(seconds=policy.retry_for_s):
        log.error("%s message %s failed for good after %s attempts since %s: %s", claim.kind, claim.id,
                  claim.attempts, claim.first_attempt_at.isoformat(), error)
        return Outcome(OutboxStatus.FAILED, last_error=error)
    delay = retry_delay_s(claim.attempts, retry_after, policy.max_backoff_s)
    log.warning("%s message %s failed (attempt %s), next try in %s s: %s",
                claim.kind, claim.id, claim.attempts, delay, error)
    return Outcome(OutboxStatus.PENDING, last_error=error, next_attempt_at=now + timedelta(seconds=delay))
