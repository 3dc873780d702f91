"""Send what the outbox holds, with the senders and retry policy the settings configure."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from alerts.outbox import Sender
from alerts.outbox.delivery import RetryPolicy, deliver_pending
from watchtower.runtime import Runtime


def senders(runtime: Runtime) -> dict[str, Sender]:
    """One sender per outbox kind, each built for its first message: slack_sdk and httpx load only when a pass
    has something to send (not with `watchtower monitor` on a quiet outbox)."""
    return {"slack": _on_first_send(lambda: _slack(runtime)), "webhook": _on_first_send(lambda: _webhook(runtime))}


def _slack(runtime: Runtime) -> Sender:
    from alerts.slack.sender import SlackSender
    from alerts.slack.store import IncidentMessages

    settings = runtime.settings
    token = settings.slack_token.get_secret_value() if settings.slack_token else None
    messages = IncidentMessages(runtime.engine, public_url=settings.public_url, oncall=settings.oncall_slack_user)
    return SlackSender(token, settings.slack_base_url, settings.webhook_timeout_s, messages)


def _webhook(runtime: Runtime) -> Sender:
    from alerts.webhook import WebhookSender

    return WebhookSender(runtime.settings.webhook_timeout_s)


def _on_first_send(build: Callable[[], Sender]) -> Sender:
    """A sender that builds the real one when it is first called, then keeps it."""
    built: list[Sender] = []

    def send(payload: dict[str, Any], idempotency_key: str) -> str:
        if not built:
            built.append(build())
        return built[0](payload, idempotency_key)

    return send


def retry_policy(runtime: Runtime) -> RetryPolicy:
    """WATCHTOWER_OUTBOX_RETRY_FOR_S, _MAX_BACKOFF_S and _CLAIM_TTL_S."""
    settings = runtime.settings
    return RetryPolicy(retry_for_s=settings.outbox_retry_for_s, max_backoff_s=settings.outbox_max_backoff_s,
                       claim_ttl_s=settings.outbox_claim_ttl_s)


def deliver_outbox(runtime: Runtime, *, now: datetime | None = None) -> int:
    """Deliver due messages once each; failures are retried later and counted in watchtower_delivery_failures."""
    return deliver_pending(
        runtime.engine, senders(runtime), policy=retry_policy(runtime), now=now,
        on_failure=lambda kind: runtime.metrics.delivery_failures.labels(kind).inc())
