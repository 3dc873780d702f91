"""How Slack messages about incidents read (Block Kit), and the outbox payloads that carry them; pure functions.

Outbox "slack" payloads are slack-sdk call arguments plus a few keys of ours, which the sender removes:
`method` ("chat.postMessage" when absent, "chat.update", or "response_url"), `incident_message` (this post
is, or this update edits, the incident's message), `thread_of` (reply in that incident message's thread) and
`response_url` (where an ephemeral answer to a click goes).
"""

import json
from dataclasses import dataclass
from typing import Any

from postmortems.models import ACTIVE, Incident, Status
from watchtower.auth.models import User

POST, UPDATE, RESPOND = "chat.postMessage", "chat.update", "response_url"
OUR_KEYS = ("method", "incident_message", "thread_of", "response_url")
ACK, RESOLVE, RESTORE, RESUME, SILENCE = "ack", "resolve", "restore", "resume", "silence"
SILENCE_HOURS = (1, 4, 24)
ACTIONS_BLOCK = "incident_actions"
SECTION_MAX = 2900  # Slack refuses a section text over 3000 characters


def escape(text: str) -> str:
    """Text a user controls (names, titles), made inert for mrkdwn: no <!channel> ping, no <url|forged link>."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user: User) -> str:
    """A person in a message: a mention that notifies them, or their (escaped) name without a Slack id."""
    return f"<@{user.slack_user_id}>" if user.slack_user_id else escape(user.display_name)


@dataclass(frozen=True)
class IncidentState:
    """What the message's status line and buttons depend on."""

    status: str
    acknowledged_by: str | None = None  # who acknowledged (a handle), while it stands
    fallback_of: str | None = None  # the model's name, while its fallback serves
    paused_pipeline: str | None = None  # the pipeline's name, while it is paused

    @property
    def active(self) -> bool:
        return self.status in {s.value for s in ACTIVE}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_MAX]}}


def _button(text: str, action_id: str, incident_id: int, style: str | None = None) -> dict[str, Any]:
    # The value names the incident, as Grafana OnCall's buttons do: the click alone says what to act on.
    button = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text},
              "value": json.dumps({"incident_id": incident_id})}
    return button | ({"style": style} if style else {})


def incident_actions(incident_id: int, state: IncidentState) -> dict[str, Any] | None:
    """The buttons for what can be done now; None once the incident is over."""
    if not state.active:
        return None
    elements = []
    if state.status == Status.open:
        elements.append(_button("Acknowledge", ACK, incident_id, "primary"))
    elements.append(_button("Resolve", RESOLVE, incident_id))
    if state.fallback_of:
        elements.append(_button("Restore primary", RESTORE, incident_id))
    if state.paused_pipeline:
        elements.append(_button("Resume pipeline", RESUME, incident_id))
    elements.append({
        "type": "static_select", "action_id": SILENCE, "placeholder": {"type": "plain_text", "text": "Silence"},
        "options": [{"text": {"type": "plain_text", "text": f"Silence {h} h"},
                     "value": json.dumps({"incident_id": incident_id, "hours": h})} for h in SILENCE_HOURS]})
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements}


def status_line(state: IncidentState) -> str:
    """Where the incident is, in one line."""
    if not state.active:
        return f":white_check_mark: *{state.status.replace('_', ' ').capitalize()}*"
    parts = [f"*Status:* {state.status}" + (f" by {escape(state.acknowledged_by)}"
                                            if state.acknowledged_by and state.status != Status.open else "")]
    if state.fallback_of:
        parts.append(f"{escape(state.fallback_of)} is served by its fallback")
    if state.paused_pipeline:
        parts.append(f"pipeline {escape(state.paused_pipeline)} is paused")
    return " · ".join(parts)


def incident_message(*, channel: str, incident_id: int, severity: str, title: str, summary: str,
                     mitigations: list[str], url: str, oncall: str | None,
                     similar: list[str] | None = None, state: IncidentState | None = None,
                     diagnosis: list[str] | None = None) -> dict[str, Any]:
    """chat.postMessage arguments for an incident's message; with `state`, its status line and buttons."""
    done = "; ".join(escape(m) for m in mitigations) if mitigations else "no automatic mitigation succeeded"
    mention_ = f" <@{oncall}>" if oncall else ""
    text = f"[{severity}] Incident #{incident_id}: {escape(title)}{mention_}"
    blocks = [
        _section(f":rotating_light: *{text}*"),
        _section(escape(summary)),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Done automatically: {done}"[:SECTION_MAX]}]},
    ]
    if diagnosis:  # the likely causes, each with its confidence and reason (postmortems/diagnosis)
        blocks.append(_section("*Likely cause:* " + "\n".join(escape(d) for d in diagnosis)))
    if similar:
        blocks.append(_section("*Last time:* " + "\n".join(escape(s) for s in similar)))
    blocks.append(_section(f"<{url}|Open incident #{incident_id}>"))
    if state is not None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": status_line(state)}]})
        actions = incident_actions(incident_id, state)
        if actions is not None:
            blocks.append(actions)
    return {"channel": channel, "text": text, "blocks": blocks, "incident_message": incident_id}


def held_message(*, channel: str, model: str, severity: str, held: list[str], url: str | None,
                 oncall: str | None) -> dict[str, Any]:
    """chat.postMessage arguments for a breach that an operator's hold keeps from being mitigated."""
    mention_ = f" <@{oncall}>" if oncall else ""
    text = f"[{severity}] {escape(model)}: breach continues; {escape('; '.join(held))}{mention_}"
    blocks: list[dict[str, Any]] = [
        _section(f":double_vertical_bar: *{text}*"),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            "Nothing was mitigated automatically. The hold ends when its incident is resolved, at its end time, "
            f"or when re-armed: POST /models/{escape(model)}/holds/{{action}}/rearm")}]},
    ]
    if url:
        blocks.append(_section(f"<{url}|Open the incident>"))
    return {"channel": channel, "text": text, "blocks": blocks}


def update_payload(incident_id: int, why: str) -> dict[str, Any]:
    """A chat.update of the incident's message, rendered when it is sent (so it always shows the state then)."""
    return {"method": UPDATE, "incident_message": incident_id, "text": f"Incident #{incident_id}: {escape(why)}"}


def thread_payload(incident_id: int, text: str) -> dict[str, Any]:
    """A reply in the thread of the incident's message (channel and thread_ts are looked up when sent)."""
    return {"method": POST, "thread_of": incident_id, "text": escape(text)}


def ephemeral_payload(response_url: str, text: str) -> dict[str, Any]:
    """An answer only the person who clicked sees, through the click's response_url."""
    return {"method": RESPOND, "response_url": response_url,
            "body": {"response_type": "ephemeral", "replace_original": False, "text": escape(text)}}


def page_dm(user: User, incident: Incident, url: str) -> dict[str, Any]:
    """chat.postMessage arguments paging one person in the app's direct messages with them."""
    if not user.slack_user_id:
        raise ValueError(f"user '{user.handle}' has no Slack member id to page")
    assert incident.id is not None
    text = f":pager: You are paged: [{incident.severity}] incident #{incident.id}: {escape(incident.title)}"
    blocks = [_section(text), _section(f"<{url}|Open incident #{incident.id}>")]
    actions = incident_actions(incident.id, IncidentState(status=incident.status))
    if actions is not None:
        blocks.append(actions)
    return {"channel": user.slack_user_id, "text": text, "blocks": blocks}


def preview(payload: dict[str, Any]) -> list[str]:
    """A message as plain lines: its text, then its buttons, e.g. for the demo when there is no Slack token."""
    lines = [f"{payload.get('channel', '')}: {_unescape(str(payload.get('text', '')))}"]
    for block in payload.get("blocks", []):
        if block["type"] != "actions":
            continue
        shown = [f"[{e['text']['text']}]" if e["type"] == "button" else
                 f"[{' | '.join(o['text']['text'] for o in e['options'])}]"
                 for e in block["elements"]]
        lines.append("buttons: " + " ".join(shown))
    return lines


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
