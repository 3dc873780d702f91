"""Slack messages: how an incident alert reads, and the sender the outbox calls (slack-sdk WebClient)."""

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from alerts.outbox import RetryLater, Skipped
from alerts.outbox.backoff import parse_retry_after
from watchtower.clock import utcnow


def incident_message(*, channel: str, incident_id: int, severity: str, title: str, summary: str,
                     mitigations: list[str], url: str, oncall: str | None,
                     similar: list[str] | None = None) -> dict[str, Any]:
    """chat.postMessage arguments for a new incident."""
    done = "; ".join(mitigations) if mitigations else "no automatic mitigation succeeded"
    mention = f" <@{oncall}>" if oncall else ""
    text = f"[{severity}] Incident #{incident_id}: {title}{mention}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":rotating_light: *{text}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Done automatically: {done}"}]},
    ]
    if similar:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": "*Last time:* " + "\n".join(similar)[:2900]}})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{url}|Open incident #{incident_id}>"}})
    return {"channel": channel, "text": text, "blocks": blocks}


def held_message(*, channel: str, model: str, severity: str, held: list[str], url: str | None,
                 oncall: str | None) -> dict[str, Any]:
    """chat.postMessage arguments for a breach that an operator's hold keeps from being mitigated."""
    mention = f" <@{oncall}>" if oncall else ""
    text = f"[{severity}] {model}: breach continues; {'; '.join(held)}{mention}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":double_vertical_bar: *{text[:2900]}*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "Nothing was mitigated automatically. The hold ends when its incident is resolved, at its end time, "
            f"or when re-armed: POST /models/{model}/holds/{{action}}/rearm")}]},
    ]
    if url:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{url}|Open the incident>"}})
    return {"channel": channel, "text": text, "blocks": blocks}


class SlackSender:
    """Posts outbox payloads with slack-sdk; without a token it refuses, and the outbox logs the alert.

    Slack takes no idempotency key, so the outbox's claim is what keeps a message from being posted twice;
    slack-sdk's own retries are off (its default retries a reset connection, which may post twice), and a
    429 or 503 with Retry-After becomes RetryLater, so the outbox waits as long as Slack asked.
    """

    def __init__(self, token: str | None, base_url: str, timeout_s: float = 10) -> None:
        self._client = WebClient(token=token, base_url=base_url, timeout=max(int(timeout_s), 1),
                                 retry_handlers=[]) if token else None

    def __call__(self, payload: dict[str, Any], idempotency_key: str) -> str:
        if self._client is None:
            raise Skipped(f"no WATCHTOWER_SLACK_TOKEN; alert was: {payload.get('text')}")
        try:
            response = self._client.chat_postMessage(**payload)
        except SlackApiError as exc:
            headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
            after = parse_retry_after(headers.get("retry-after"), utcnow())
            if exc.response.status_code in (429, 503) and after is not None:
                raise RetryLater(f"Slack answered {exc.response.status_code}, retry after {after:g} s", after) from exc
            raise
        return f"posted to {response.get('channel')} at ts {response.get('ts')}"
