"""The sender for webhook outbox messages (pipeline pause notifications)."""

from typing import Any

import httpx


class WebhookSender:
    """POSTs the payload's body as JSON to its URL; any non-2xx raises, so the outbox retries."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout = timeout_s

    def __call__(self, payload: dict[str, Any]) -> str:
        response = httpx.post(payload["url"], json=payload["body"], timeout=self._timeout)
        response.raise_for_status()
        return f"{payload['url']} answered {response.status_code}"
