"""Silences: set, expire, list, and the two questions the response asks (is this silenced? silence this incident).

Services add and flush; the caller commits. Every function that depends on the time takes `now`.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session, col, select

from alerts.outbox import OutboxMessage
from alerts.silences.matchers import Matcher, matches_all, silences_everything
from alerts.silences.models import Silence, State
from postmortems.models import Incident, TimelineEntry
from postmortems.service import add_entry, get_incident
from watchtower.clock import to_utc, utcnow
from watchtower.errors import Conflict, Invalid, NotFound, field_error
from watchtower.limits import SafeStr

MAX_HOURS = 24 * 14  # from an incident (Slack's buttons offer 1, 4 and 24 h)


class SilenceCreate(BaseModel):
    """A new silence, as Alertmanager takes one (in snake_case)."""

    model_config = ConfigDict(extra="forbid")
    matchers: list[Matcher] = Field(min_length=1, max_length=20)
    starts_at: datetime | None = Field(default=None, description="Default: now")
    ends_at: datetime
    created_by: SafeStr = Field(min_length=1, max_length=200)
    comment: SafeStr = Field(min_length=1, max_length=2000, description="Why (a retrain, a backfill, a known issue)")

    @field_validator("matchers")
    @classmethod
    def _not_everything(cls, matchers: list[Matcher]) -> list[Matcher]:
        if silences_everything(matchers):
            raise ValueError('at least one matcher must not match an empty label (such as model="churn"): '
                             "these would silence every page")
        return matchers

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return to_utc(value) if value is not None else None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


def create_silence(session: Session, body: SilenceCreate, now: datetime, incident_id: int | None = None) -> Silence:
    """Store a silence; one that would end before `now` is refused (it could never hold anything)."""
    if body.ends_at <= now:
        raise Invalid("a silence must end in the future", errors=[field_error("body.ends_at", "is in the past")])
    silence = Silence(matchers=[m.model_dump() for m in body.matchers], starts_at=body.starts_at or now,
                      ends_at=body.ends_at, created_by=body.created_by, comment=body.comment,
                      incident_id=incident_id, created_at=now, updated_at=now)
    session.add(silence)
    session.flush()
    return silence


def get_silence(session: Session, silence_id: int) -> Silence:
    """The silence, or NotFound."""
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise NotFound(f"no silence {silence_id}")
    return silence


def expire_silence(session: Session, silence_id: int, author: str, now: datetime) -> Silence:
    """End a silence now (a pending one never starts); Conflict if it has already ended."""
    silence = get_silence(session, silence_id)
    if silence.state(now) == "expired":
        raise Conflict(f"silence {silence_id} already expired at {silence.ends_at.isoformat()}")
    if silence.starts_at > now:
        silence.starts_at = now
    silence.ends_at, silence.expired_by, silence.updated_at = now, author, now
    session.add(silence)
    session.flush()
    return silence


def list_silences(session: Session, now: datetime, state: State | None = None, limit: int = 100) -> list[Silence]:
    """Silences in one state (or all), the latest-starting first."""
    query = select(Silence)
    if state == "pending":
        query = query.where(col(Silence.starts_at) > now)
    elif state == "active":
        query = query.where(col(Silence.starts_at) <= now, col(Silence.ends_at) > now)
    elif state == "expired":
        query = query.where(col(Silence.ends_at) <= now)
    order = col(Silence.ends_at).desc() if state == "expired" else col(Silence.starts_at).desc()
    return list(session.exec(query.order_by(order, col(Silence.id).desc()).limit(limit)).all())


def matchers_of(silence: Silence) -> list[Matcher]:
    """The stored matchers, validated again."""
    return [Matcher.model_validate(m) for m in silence.matchers]


def silenced(session: Session, labels: Sequence[Mapping[str, str]], now: datetime) -> Silence | None:
    """The active silence that holds a page with these label sets, or None unless every set is silenced.

    One page can be about several findings (label sets): it is held only when each of them is silenced,
    possibly by different silences; the one returned is the silence of the first set.
    """
    if not labels:
        return None
    active = [(s, matchers_of(s)) for s in list_silences(session, now, "active", limit=10_000)]
    active.sort(key=lambda pair: pair[0].id or 0)
    first: Silence | None = None
    for label_set in labels:
        hit = next((s for s, matchers in active if matches_all(matchers, label_set)), None)
        if hit is None:
            return None
        first = first or hit
    return first


def model_of(session: Session, incident: Incident) -> str | None:
    """The model an incident is about: its monitored model, else the one model it names."""
    from watchtower.registry.models import MonitoredModel

    if incident.model_id is not None:
        model = session.get(MonitoredModel, incident.model_id)
        if model is not None:
            return model.name
    named = sorted(set(incident.affected_models))
    return named[0] if len(named) == 1 else None


def silence_incident(session: Session, incident_id: int, hours: int, author: str) -> int:
    """Silence pages about the incident's model for `hours` from now; returns the silence id (flushed, not
    committed). The Slack Silence button calls this; the incident's timeline says who silenced it."""
    incident = get_incident(session, incident_id)
    if not 1 <= hours <= MAX_HOURS:
        raise Invalid(f"hours must be between 1 and {MAX_HOURS}", errors=[field_error("hours", "out of range")])
    model = model_of(session, incident)
    if model is None:
        raise Invalid(f"incident {incident_id} names no single model to silence",
                      errors=[field_error("incident_id", "no model")])
    now = utcnow()
    body = SilenceCreate(matchers=[Matcher(name="model", value=model)], starts_at=now,
                         ends_at=now + timedelta(hours=hours), created_by=author,
                         comment=f"Silenced from incident #{incident_id}: {incident.title}"[:2000])
    silence = create_silence(session, body, now, incident_id=incident_id)
    assert silence.id is not None
    add_entry(session, incident_id, "silence",
              f"Pages for model {model} silenced for {hours} h by {author} (silence #{silence.id}, until "
              f"{silence.ends_at:%Y-%m-%d %H:%M} UTC)", source="human", author=author,
              details={"silence_id": silence.id, "hours": hours}, at=now)
    session.flush()
    return silence.id


def owes_page(session: Session, incident_id: int | None) -> bool:
    """Whether an open incident's page was held and nobody has been told since: once nothing holds it, its
    next breach pages (as Alertmanager notifies an alert still firing when its silence ends)."""
    if incident_id is None:
        return False
    held = session.exec(select(TimelineEntry.id).where(TimelineEntry.incident_id == incident_id,
                                                       col(TimelineEntry.kind).in_(("silenced", "inhibited")))).first()
    if held is None:
        return False
    return session.exec(select(OutboxMessage.id).where(OutboxMessage.incident_id == incident_id)).first() is None
