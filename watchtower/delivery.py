"""Send what the outbox holds, with the senders and retry policy the settings configure."""

from datetime import datetime

from alerts.outbox import Sender
from alerts.outbox.delivery import RetryPolicy, deliver_pending
from alerts.slack.sender import SlackSender
from alerts.slack.store import IncidentMessages
from alerts.webhook import WebhookSender
from watchtower.runtime import Runtime


def senders(runtime: Runtime) -> dict[str, Sender]:
    """One sender per outbox kind."""
    settings = runtime.settings
    token = settings.slack_token.get_secret_value() if settings.slack_token else None
    messages = IncidentMessages(runtime.engine, public_url=settings.public_url, oncall=settings.oncall_slack_user)
    return {"slack": SlackSender(token, settings.slack_base_url, settings.webhook_timeout_s, messages),
            "webhook": WebhookSender(settings.webhook_timeout_s)}


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
