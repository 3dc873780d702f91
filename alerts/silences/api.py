"""Silences over JSON: list by state, add one, expire one (DELETE, as Alertmanager's API does)."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from alerts.silences.matchers import Matcher, Op
from alerts.silences.models import Silence, State
from alerts.silences.service import SilenceCreate, create_silence, expire_silence, list_silences, matchers_of
from watchtower.auth.access import PrincipalDep
from watchtower.auth.bearer import WriteAccess
from watchtower.auth.principal import attributed, author_for
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import problem_responses

router = APIRouter(tags=["silences"], responses=problem_responses(422))
writes = APIRouter(tags=["silences"], dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422))
DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class MatcherRead(BaseModel):
    name: str
    op: Op
    value: str
    is_regex: bool
    is_equal: bool


class SilenceRead(BaseModel):
    id: int
    matchers: list[MatcherRead]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    status: State
    incident_id: int | None
    expired_by: str | None
    updated_at: datetime


def silence_read(silence: Silence, now: datetime) -> SilenceRead:
    """The API view of a silence, with its state now and each matcher's operator."""
    assert silence.id is not None
    return SilenceRead(
        id=silence.id, matchers=[_matcher(m) for m in matchers_of(silence)], starts_at=silence.starts_at,
        ends_at=silence.ends_at, created_by=silence.created_by, comment=silence.comment, status=silence.state(now),
        incident_id=silence.incident_id, expired_by=silence.expired_by, updated_at=silence.updated_at)


def _matcher(m: Matcher) -> MatcherRead:
    return MatcherRead(name=m.name, op=m.op, value=m.value, is_regex=m.is_regex, is_equal=m.is_equal)


@router.get("/silences", response_model=list[SilenceRead])
def read_silences(session: SessionDep,
                  state: Annotated[State | None, Query(description="pending, active or expired")] = None,
                  limit: Annotated[int, Query(gt=0, le=500)] = 100) -> list[SilenceRead]:
    """Silences in one state (or all): pending and active ones by start, newest first; expired ones by end."""
    now = utcnow()
    return [silence_read(s, now) for s in list_silences(session, now, state, limit)]


@writes.post("/silences", response_model=SilenceRead, status_code=201)
def add_silence(body: SilenceCreate, session: SessionDep, principal: PrincipalDep) -> SilenceRead:
    """Hold pages whose breach labels match every matcher, from starts_at (default now) to ends_at.

    Label names: model, monitor, detector, kind, feature, severity; a regex (`is_regex`) is fully anchored.
    """
    now = utcnow()
    silence = create_silence(session, attributed(body, principal, "created_by"), now)
    session.commit()
    return silence_read(silence, now)


@writes.delete("/silences/{silence_id}", response_model=SilenceRead)
def expire(silence_id: DbId, session: SessionDep, principal: PrincipalDep,
           author: Annotated[str, Query(min_length=1, max_length=200, description="Who expires it")] = "api",
           ) -> SilenceRead:
    """Expire a silence now (the row stays, as the audit trail); 409 if it has already expired."""
    now = utcnow()
    silence = expire_silence(session, silence_id, author_for(principal, author), now)
    session.commit()
    return silence_read(silence, now)


router.include_router(writes)
