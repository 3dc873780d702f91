"""Send what the outbox holds, with the senders the settings configure."""

from alerts.outbox import Sender, deliver_pending
from alerts.slack import SlackSender
from alerts.webhook import WebhookSender
from watchtower.runtime import Runtime


def senders(runtime: Runtime) -> dict[str, Sender]:
    """One sender per outbox kind."""
    settings = runtime.settings
    token = settings.slack_token.get_secret_value() if settings.slack_token else None
    return {"slack": SlackSender(token, settings.slack_base_url, settings.webhook_timeout_s),
            "webhook": WebhookSender(settings.webhook_timeout_s)}


def deliver_outbox(runtime: Runtime) -> int:
    """Deliver due messages once; failures stay pending, counted in watchtower_delivery_failures."""
    return deliver_pending(
        runtime.engine, senders(runtime), max_attempts=runtime.settings.outbox_max_attempts,
        on_failure=lambda kind: runtime.metrics.delivery_failures.labels(kind).inc())
