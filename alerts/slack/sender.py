"""The outbox's Slack sender: posts, edits and thread replies through slack-sdk's WebClient, answers through
response_url with its WebhookClient. The payload keys it understands are described in messages.py."""

from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from alerts.outbox import RetryLater, Skipped
from alerts.outbox.backoff import parse_retry_after
from alerts.slack.messages import OUR_KEYS, POST, RESPOND, UPDATE
from watchtower.clock import utcnow

WAIT_FOR_ORIGINAL_S = 30.0  # an edit or reply queued before the incident's message went out waits this long


class MessageStore(Protocol):
    """Where incident messages are and what they say now (alerts.slack.store.IncidentMessages)."""

    def location(self, incident_id: int) -> tuple[str, str] | None: ...
    def waiting(self, incident_id: int) -> bool: ...
    def render(self, incident_id: int, channel: str) -> dict[str, Any]: ...
    def record(self, incident_id: int, channel: str, ts: str) -> str: ...


class SlackSender:
    """Sends outbox payloads with slack-sdk; without a token it refuses, and the outbox logs the alert.

    Slack takes no idempotency key, so the outbox's claim is what keeps a message from being posted twice;
    slack-sdk's own retries are off (its default retries a reset connection, which may post twice), and a
    429 or 503 with Retry-After becomes RetryLater, so the outbox waits as long as Slack asked.
    """

    def __init__(self, token: str | None, base_url: str, timeout_s: float = 10,
                 messages: MessageStore | None = None) -> None:
        self._timeout = max(int(timeout_s), 1)
        self._client = WebClient(token=token, base_url=base_url, timeout=self._timeout,
                                 retry_handlers=[]) if token else None
        self._messages = messages

    def __call__(self, payload: dict[str, Any], idempotency_key: str) -> str:
        method = payload.get("method", POST)
        if method == RESPOND:  # needs no token: the URL itself is Slack's permission to answer
            return self._respond(payload)
        if self._client is None:
            raise Skipped(f"no WATCHTOWER_SLACK_TOKEN; alert was: {payload.get('text')}")
        args = {k: v for k, v in payload.items() if k not in OUR_KEYS}
        incident_id: int | None = payload.get("incident_message")
        try:
            if method == UPDATE:
                assert incident_id is not None, "an update names the incident whose message it edits"
                channel, ts = self._locate(incident_id)
                self._client.chat_update(**self._render(incident_id, channel), ts=ts)
                return f"updated {channel} ts {ts}"
            if "thread_of" in payload:
                channel, ts = self._locate(payload["thread_of"])
                response = self._client.chat_postMessage(**args | {"channel": channel, "thread_ts": ts})
                return f"replied in {channel} thread {ts} at ts {response.get('ts')}"
            if incident_id is not None and self._messages is not None:
                args |= self._render(incident_id, args["channel"])
            response = self._client.chat_postMessage(**args)
        except SlackApiError as exc:
            later = _retry_later(exc)
            if later is not None:
                raise later from exc
            raise
        return _posted(response) + self._record(incident_id, response)

    def _render(self, incident_id: int, channel: str) -> dict[str, Any]:
        """The incident's message as it reads now: edits, and a first post that waited, show the state when sent."""
        assert self._messages is not None
        return self._messages.render(incident_id, channel)

    def _locate(self, incident_id: int) -> tuple[str, str]:
        """Channel and ts of the incident's message; wait for it if it is still queued, skip if it never went."""
        if self._messages is None:
            raise Skipped("this sender has no database to find incident messages in")
        found = self._messages.location(incident_id)
        if found is not None:
            return found
        if self._messages.waiting(incident_id):
            raise RetryLater(f"incident #{incident_id}'s message is not posted yet", WAIT_FOR_ORIGINAL_S)
        raise Skipped(f"incident #{incident_id} has no Slack message (it was never posted)")

    def _record(self, incident_id: int | None, response: SlackResponse) -> str:
        if incident_id is None or self._messages is None:
            return ""
        return "; " + self._messages.record(incident_id, str(response.get("channel")), str(response.get("ts")))

    def _respond(self, payload: dict[str, Any]) -> str:
        response = WebhookClient(payload["response_url"], timeout=self._timeout, retry_handlers=[]) \
            .send_dict(payload["body"])
        if response.status_code != 200:
            raise RuntimeError(f"response_url answered {response.status_code}: {response.body[:200]}")
        return "answered through response_url"


def _posted(response: SlackResponse) -> str:
    return f"posted to {response.get('channel')} at ts {response.get('ts')}"


def _retry_later(exc: SlackApiError) -> RetryLater | None:
    """A 429 or 503 that says when to come back, as RetryLater; None for any other failure."""
    headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
    after = parse_retry_after(headers.get("retry-after"), utcnow())
    if exc.response.status_code in (429, 503) and after is not None:
        return RetryLater(f"Slack answered {exc.response.status_code}, retry after {after:g} s", after)
    return None
