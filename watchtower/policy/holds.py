"""Operator decisions that stick: after a restore or a resume, automatic swap or pause is held for the model.

A hold holds while nobody re-armed it, before the time the operator set (if any), and while the incident it was
taken on (the model's newest active incident at that moment, if any) is active. The last two are computed when
read, from `now` and the incident's status: resolving the incident is all it takes to release a hold, and
postmortems need not know about holds.
"""

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlmodel import Session, col, select

from alerts.outbox import enqueue
from alerts.slack.messages import held_message
from postmortems.models import ACTIVE, Incident
from postmortems.service import add_entry, incident_url, open_incidents_of
from watchtower.clock import to_utc
from watchtower.errors import Invalid, NotFound, field_error
from watchtower.policy.models import ActionHold
from watchtower.settings import Settings

Holdable = Literal["swap_model", "pause_pipeline"]
HOLDABLE: tuple[Holdable, ...] = ("pause_pipeline", "swap_model")
WORDS = {"swap_model": "swap", "pause_pipeline": "pause"}
MAX_HOLD = timedelta(days=30)  # a longer hold is a policy change (PUT /models/{name}/policy), not a hold
ACTIVE_VALUES = [s.value for s in ACTIVE]


class HoldRead(BaseModel):
    """A hold as the API shows it: who, why, since when, until what, and whether it still holds."""

    id: int
    action: str
    author: str
    reason: str
    since: datetime
    until: datetime | None
    incident_id: int | None
    active: bool
    ended: str | None  # why it no longer holds: re-armed, expired, or its incident resolved
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None
    alerted_severity: str | None
    text: str  # "automatic swap held by ana since 2026-11-28 08:40 UTC: upstream fixed"


def check_until(until: datetime | None, now: datetime, field: str = "body.hold_until") -> datetime | None:
    """An operator's hold_until, in UTC: in the future and at most MAX_HOLD ahead (422 naming the field)."""
    if until is None:
        return None
    until = to_utc(until)
    if until <= now:
        raise Invalid("hold_until must be in the future", errors=[field_error(field, "not in the future")])
    if until > now + MAX_HOLD:
        raise Invalid(f"hold_until is more than {MAX_HOLD.days} days ahead",
                      errors=[field_error(field, f"more than {MAX_HOLD.days} days ahead")])
    return until


def take(session: Session, model_id: int, action: Holdable, author: str, reason: str, now: datetime,
         until: datetime | None = None) -> ActionHold:
    """Hold `action` for the model from `now`, replacing any hold of it that still holds (the caller's restore or
    resume entry on the timeline says so: `lasts(hold)`)."""
    incidents = sorted(open_incidents_of(session, model_id), key=lambda i: (i.opened_at, i.id or 0))
    incident = incidents[-1] if incidents else None
    for old, _ in holds_of(session, model_id, now, active_only=True, action=action):
        _release(session, old, author, "replaced by a newer hold", now, note=False)
    hold = ActionHold(model_id=model_id, action=action, author=author, reason=reason, since=now, until=until,
                      incident_id=incident.id if incident else None)
    session.add(hold)
    session.flush()
    return hold


def rearm(session: Session, model_id: int, action: Holdable, author: str, reason: str,
          now: datetime) -> list[ActionHold]:
    """Release the model's holds of `action` (NotFound if none holds): the next confirmed breach acts again."""
    released = [hold for hold, _ in holds_of(session, model_id, now, active_only=True, action=action)]
    if not released:
        raise NotFound(f"automatic {WORDS[action]} is not held for this model")
    for hold in released:
        _release(session, hold, author, reason, now)
    session.flush()
    return released


def _release(session: Session, hold: ActionHold, author: str, reason: str, now: datetime,
             note: bool = True) -> None:
    hold.released_at, hold.released_by, hold.release_reason = now, author, reason
    session.add(hold)
    if not note:  # replaced: the new decision's own timeline entry says what holds now
        return
    incident = session.get(Incident, hold.incident_id) if hold.incident_id else None
    if incident is not None and incident.id is not None and incident.status in ACTIVE_VALUES:
        add_entry(session, incident.id, "rearm", f"Automatic {WORDS[hold.action]} re-armed: {reason}",
                  source="human", author=author, details={"hold_id": hold.id, "action": hold.action}, at=now)


def holds_of(session: Session, model_id: int | None, now: datetime, *, active_only: bool = False,
             action: str | None = None) -> list[tuple[ActionHold, str | None]]:
    """Holds (of one model, or of all with None), newest first, each with why it ended (None: it holds)."""
    query = select(ActionHold, Incident.status).outerjoin(Incident, col(ActionHold.incident_id) == Incident.id)
    if model_id is not None:
        query = query.where(ActionHold.model_id == model_id)
    if action is not None:
        query = query.where(ActionHold.action == action)
    if active_only:
        query = query.where(col(ActionHold.released_at).is_(None),
                            col(ActionHold.until).is_(None) | (col(ActionHold.until) > now))
    rows = session.exec(query.order_by(col(ActionHold.since).desc(), col(ActionHold.id).desc())).all()
    found = [(hold, ended(hold, status, now)) for hold, status in rows]
    return [(hold, why) for hold, why in found if why is None] if active_only else found


def ended(hold: ActionHold, incident_status: str | None, now: datetime) -> str | None:
    """Why the hold no longer holds at `now`, or None while it holds."""
    if hold.released_at is not None:
        return f"re-armed by {hold.released_by}: {hold.release_reason}"
    if hold.until is not None and to_utc(hold.until) <= now:
        return f"expired at {_when(hold.until)}"
    if hold.incident_id is not None and incident_status is not None and incident_status not in ACTIVE_VALUES:
        return f"incident #{hold.incident_id} is {incident_status}"
    return None


def held(session: Session, model_id: int, actions: tuple[str, ...], now: datetime) -> dict[str, ActionHold]:
    """The newest hold that holds, per action of `actions` that is held for the model now."""
    found: dict[str, ActionHold] = {}
    if not any(a in HOLDABLE for a in actions):
        return found
    for hold, _ in holds_of(session, model_id, now, active_only=True):
        if hold.action in actions:
            found.setdefault(hold.action, hold)
    return found


def describe(hold: ActionHold) -> str:
    """'automatic swap held by ana since 2026-11-28 08:40 UTC: upstream fixed'."""
    return f"automatic {WORDS[hold.action]} held by {hold.author} since {_when(hold.since)}: {hold.reason}"


def hold_read(hold: ActionHold, why_ended: str | None) -> HoldRead:
    """The API view of a hold."""
    assert hold.id is not None
    return HoldRead(id=hold.id, action=hold.action, author=hold.author, reason=hold.reason, since=hold.since,
                    until=hold.until, incident_id=hold.incident_id, active=why_ended is None, ended=why_ended,
                    released_at=hold.released_at, released_by=hold.released_by,
                    release_reason=hold.release_reason, alerted_severity=hold.alerted_severity,
                    text=describe(hold) + (f" ({lasts(hold)})" if why_ended is None else f" (ended: {why_ended})"))


def of_incident(session: Session, incident_id: int, model_id: int | None, now: datetime) -> list[HoldRead]:
    """Holds to show on an incident's page: those taken on it, and any other that holds for its model now."""
    rows = holds_of(session, model_id, now) if model_id is not None else []
    return [hold_read(h, why) for h, why in rows if h.incident_id == incident_id or why is None]


def lasts(hold: ActionHold) -> str:
    """'until incident #3 is resolved or 2026-11-28 10:00 UTC or re-armed'."""
    ends = [f"incident #{hold.incident_id} is resolved"] if hold.incident_id else []
    ends += [f"{_when(hold.until)}"] if hold.until else []
    return "until " + " or ".join(ends + ["re-armed"])


def _when(at: datetime) -> str:
    return to_utc(at).strftime("%Y-%m-%d %H:%M UTC")


def note_held(session: Session, settings: Settings, model: str, held_now: dict[str, ActionHold],
              incident_id: int | None, severity: str, now: datetime) -> dict[str, str]:
    """A breach during holds: a timeline line per held action, and one alert per hold (again if the severity
    rises above what was alerted), so a hold is never silent and never pages every pass. Returns the details."""
    incident = session.get(Incident, incident_id) if incident_id is not None else None
    severity = incident.severity if incident is not None else severity
    details: dict[str, str] = {}
    for action in (a for a in HOLDABLE if a in held_now):
        hold = held_now[action]
        details[action] = f"breach continues; {describe(hold)}"
        if incident_id is not None:
            add_entry(session, incident_id, "held", details[action], details={"hold_id": hold.id, "action": action},
                      at=now)
    # "SEV2" < "SEV3": a smaller string is a worse severity.
    due = {a: h for a in HOLDABLE if (h := held_now.get(a)) is not None
           and (h.alerted_severity is None or severity < h.alerted_severity)}
    if due:
        url = incident_url(settings.public_url, incident_id) if incident_id is not None else None
        enqueue(session, "slack", held_message(channel=settings.slack_channel, model=model, severity=severity,
                                               held=[describe(h) for h in due.values()], url=url,
                                               oncall=settings.oncall_slack_user), incident_id=incident_id)
        for action, hold in due.items():
            hold.alerted_severity, hold.alerted_at = severity, now
            session.add(hold)
            details[action] += f"; alert queued ({severity})"
    return details
