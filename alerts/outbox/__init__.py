"""The outbox: Slack and webhook messages are written with what caused them and delivered by a job.

Each message is claimed by one deliverer before it is sent and settled after (claims.py), retried with
capped backoff or the receiver's Retry-After (backoff.py) for WATCHTOWER_OUTBOX_RETRY_FOR_S, then `failed`
until an operator re-sends it (service.py, api.py). delivery.py runs one pass.
"""

from collections.abc import Callable
from typing import Any

from alerts.outbox.models import OutboxMessage, OutboxStatus, RetryLater, Skipped, enqueue

Sender = Callable[[dict[str, Any], str], str]
"""Sends one payload with its idempotency key; returns what the receiver answered, raises on failure."""

__all__ = ["OutboxMessage", "OutboxStatus", "RetryLater", "Sender", "Skipped", "enqueue"]
