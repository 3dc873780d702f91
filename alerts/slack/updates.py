"""Keep an incident's Slack message current: one call where the incident changes queues the edit and the reply.

Called by postmortems.service.transition (ack, resolve, reopen), open_or_append (breached again, severity
raised), watchtower.actions.restore (restore, resume) and the Slack Silence button. Only light imports here:
postmortems.service imports this module.
"""

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from alerts.outbox.models import OutboxMessage, OutboxStatus, enqueue
from alerts.slack.messages import POST, UPDATE, thread_payload, update_payload
from alerts.slack.models import SlackMessage
from postmortems.models import TimelineEntry

WAITING = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


def incident_changed(session: Session, incident_id: int, event_text: str | None = None, *,
                     repeat: bool = False) -> None:
    """Queue a chat.update of the incident's message and, with `event_text`, a reply in its thread.

    A message still waiting in the outbox needs no edit: it is rendered when it is sent. Nothing is queued
    for an incident without a message (Slack not configured, or no notify rule fired). `repeat` marks a
    breach of an incident already breaching: its reply goes to the thread only if someone acted since the
    last one, so a long breach does not post every pass.
    """
    posted = session.get(SlackMessage, incident_id) is not None
    original = original_status(session, incident_id)
    if not posted and original is None:
        return
    # An original being sent right now was rendered before this change, so it gets an edit too.
    if (posted or original == OutboxStatus.SENDING) and not _update_waiting(session, incident_id):
        enqueue(session, "slack", update_payload(incident_id, event_text or "updated"), incident_id=incident_id)
    if event_text and not (repeat and not _news(session, incident_id)):
        enqueue(session, "slack", thread_payload(incident_id, event_text), incident_id=incident_id)


def original_status(session: Session, incident_id: int) -> str | None:
    """`pending` or `sending` while the incident's first message is in the outbox; None otherwise."""
    return next((status for payload, status in _waiting(session, incident_id)
                 if payload.get("method", POST) == POST and payload.get("incident_message") == incident_id), None)


def _update_waiting(session: Session, incident_id: int) -> bool:
    return any(status == OutboxStatus.PENDING and payload.get("method") == UPDATE
               for payload, status in _waiting(session, incident_id))


def _waiting(session: Session, incident_id: int) -> list[tuple[Mapping[str, Any], str]]:
    """(payload, status) of the incident's Slack messages still to be sent."""
    # JSON queries differ between SQLite and PostgreSQL; an incident has few messages, so filter here.
    rows = session.exec(select(OutboxMessage.payload, OutboxMessage.status).where(
        OutboxMessage.incident_id == incident_id, OutboxMessage.kind == "slack",
        col(OutboxMessage.status).in_(WAITING))).all()
    return [(payload, status) for payload, status in rows]


def _news(session: Session, incident_id: int) -> bool:
    """Whether the newest breach entry is the first since a person acted on the incident (or it recovered)."""
    entries = session.exec(select(TimelineEntry.kind, TimelineEntry.source)
                           .where(TimelineEntry.incident_id == incident_id)
                           .order_by(col(TimelineEntry.id).desc())).all()
    for kind, source in entries[1:]:  # entries[0] is the breach being reported
        if source == "human" or kind == "recovered":
            return True
        if kind == "breach":
            return False
    return False
