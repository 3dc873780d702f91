"""Page the targets of one escalation step, through the outbox: a DM and a thread mention for each person
(the on-call person of a schedule at that moment, or a named user), a message for each channel or user group.
Every page goes on the incident's timeline."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from alerts.metrics import Metrics
from alerts.oncall.models import Schedule
from alerts.oncall.schedules import oncall_at
from alerts.outbox import enqueue
from alerts.slack.messages import POST, escape, mention, page_dm
from postmortems.models import Incident
from postmortems.service import add_entry, incident_url
from watchtower.auth.models import User

AUTHOR = "escalation"


@dataclass
class Paged:
    """What one step did: mentions for its thread reply, and who or what was paged how."""

    mentions: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _person(session: Session, incident: Incident, user: User, why: str, url: str, metrics: Metrics,
            paged: Paged) -> None:
    """A DM (when the person has a Slack id) and a mention in the incident's thread."""
    assert incident.id is not None
    if not user.active:
        paged.lines.append(f"{user.handle} ({why}) not paged: deactivated")
        return
    paged.mentions.append(mention(user))
    if user.slack_user_id:
        enqueue(session, "slack", page_dm(user, incident, url), incident_id=incident.id)
        metrics.pages_sent.labels("dm").inc()
        paged.lines.append(f"paged {user.handle} ({why}) by DM")
    else:
        paged.lines.append(f"{user.handle} ({why}) has no Slack id: no DM, mentioned by name only")


def _schedule(session: Session, incident: Incident, target: dict[str, Any], now: datetime, url: str,
              metrics: Metrics, paged: Paged) -> None:
    schedule_id = target.get("schedule_id")
    if schedule_id is None or session.get(Schedule, schedule_id) is None:
        paged.lines.append(f"schedule '{target['schedule']}' no longer exists: nobody paged for it")
        return
    oncall = oncall_at(session, schedule_id, now)
    if not oncall:
        paged.lines.append(f"schedule '{target['schedule']}' has nobody on call now (a gap): nobody paged for it")
    for who in oncall:
        user = session.exec(select(User).where(User.handle == who.handle)).first()
        if user is not None:
            _person(session, incident, user, f"on call for '{target['schedule']}', {who.source}", url, metrics,
                    paged)


def _channel(session: Session, incident: Incident, channel: str, incident_channel: str, url: str,
             metrics: Metrics, paged: Paged) -> None:
    """The incident channel is paged in the incident's thread (the step's reply); another one gets a message."""
    assert incident.id is not None
    metrics.pages_sent.labels("channel").inc()
    if channel == incident_channel:
        paged.mentions.append("<!here>")
        paged.lines.append(f"paged {channel} in the incident's thread")
        return
    text = (f":pager: [{incident.severity}] incident #{incident.id}: {escape(incident.title)} "
            f"<{url}|Open incident #{incident.id}>")
    enqueue(session, "slack", {"channel": channel, "text": text}, incident_id=incident.id)
    paged.lines.append(f"paged channel {channel}")


def page_step(session: Session, incident: Incident, step: dict[str, Any], *, label: str, now: datetime,
              public_url: str, incident_channel: str, metrics: Metrics) -> Paged:
    """Notify every target of `step`; one thread reply mentions them all; the timeline says who and when."""
    assert incident.id is not None
    url = incident_url(public_url, incident.id)
    paged = Paged()
    for target in step["targets"]:
        if "schedule" in target:
            _schedule(session, incident, target, now, url, metrics, paged)
        elif "user" in target:
            user = session.exec(select(User).where(User.handle == target["user"])).first()
            if user is None:
                paged.lines.append(f"user '{target['user']}' no longer exists: not paged")
            else:
                _person(session, incident, user, "named in the policy", url, metrics, paged)
        elif "channel" in target:
            _channel(session, incident, target["channel"], incident_channel, url, metrics, paged)
        elif "user_group" in target:
            paged.mentions.append(f"<!subteam^{target['user_group']}>")
            metrics.pages_sent.labels("channel").inc()
            paged.lines.append(f"paged user group {target['user_group']} in the incident's thread")
    if paged.mentions:
        # Built here, not with thread_payload (which escapes): the mentions must stay live.
        text = f":pager: {escape(label)}: paging {', '.join(paged.mentions)}"
        enqueue(session, "slack", {"method": POST, "thread_of": incident.id, "text": text}, incident_id=incident.id)
    add_entry(session, incident.id, "page", f"{label}: " + ("; ".join(paged.lines) or "nobody to page"),
              author=AUTHOR, details={"step": step, "paged": paged.lines}, at=now)
    return paged
