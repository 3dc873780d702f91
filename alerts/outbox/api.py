"""The outbox over JSON: list messages by status, re-send one that failed."""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.outbox import service
from alerts.outbox.models import OutboxStatus
from alerts.outbox.service import OutboxMessageRead, OutboxPage
from watchtower.auth.access import PrincipalDep
from watchtower.auth.bearer import WriteAccess
from watchtower.auth.principal import attributed
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import problem_responses

router = APIRouter(tags=["outbox"], responses=problem_responses(422))
writes = APIRouter(dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422))
DbId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class RetryRequest(BaseModel):
    """Who re-sends, and why: both go on the incident's timeline."""

    model_config = ConfigDict(extra="forbid")
    author: str = Field(default="api", min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


@router.get("/outbox", response_model=OutboxPage)
def list_outbox(
    session: SessionDep,
    status: Annotated[OutboxStatus | None, Query(description="pending, sending, sent, skipped or failed")] = None,
    kind: Annotated[str | None, Query(max_length=20, description="slack or webhook")] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(gt=0, le=500)] = 50, offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> OutboxPage:
    """Slack and webhook messages, newest first: what went out, what is waiting, what gave up and why."""
    return service.list_messages(session, status=status, kind=kind, incident_id=incident_id, limit=limit,
                                 offset=offset)


@writes.post("/outbox/{message_id}/retry", response_model=OutboxMessageRead)
def retry(message_id: DbId, session: SessionDep, principal: PrincipalDep,
          body: RetryRequest | None = None) -> OutboxMessageRead:
    """Queue a failed (or skipped) message again, due now with a fresh retry window; 409 for any other status."""
    body = attributed(body or RetryRequest(), principal)
    message = service.retry_message(session, message_id, author=body.author, reason=body.reason, now=utcnow())
    session.commit()
    return service.message_read(message)


router.include_router(writes)  # one router for the app to include; the writes keep their token check
