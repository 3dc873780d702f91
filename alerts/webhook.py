"""The sender for webhook outbox messages (pipeline pause notifications)."""

from typing import Any
from urllib.parse import urlsplit

import httpx

from alerts.outbox import RetryLater
from alerts.outbox.backoff import parse_retry_after
from watchtower.clock import utcnow


class WebhookError(Exception):
    """A non-2xx answer, described without the URL's path or query (they may hold a secret)."""


class WebhookSender:
    """POSTs the payload's body as JSON to its URL with the message's Idempotency-Key header.

    Any non-2xx raises, so the outbox retries; a 429 or 503 with Retry-After raises RetryLater, so the
    outbox waits as long as the receiver asked. Errors and results name only the receiver's host, since
    they are stored and listed by GET /outbox.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s

    def __call__(self, payload: dict[str, Any], idempotency_key: str) -> str:
        url = urlsplit(payload["url"])
        host = f"{url.scheme}://{url.netloc}"
        response = httpx.post(payload["url"], json=payload["body"], timeout=self._timeout,
                              headers={"Idempotency-Key": idempotency_key})
        if response.status_code in (429, 503):
            after = parse_retry_after(response.headers.get("Retry-After"), utcnow())
            if after is not None:
                raise RetryLater(f"webhook at {host} answered {response.status_code}, retry after {after:g} s", after)
        if not response.is_success:
            raise WebhookError(f"webhook at {host} answered {response.status_code} {response.reason_phrase}")
        return f"webhook at {host} answered {response.status_code}"
