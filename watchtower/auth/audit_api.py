"""GET /audit: the audit log for admins, filtered, newest first, a page at a time."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from watchtower.auth import audit
from watchtower.clock import to_utc
from watchtower.deps import SessionDep
from watchtower.errors import Invalid, field_error, problem_responses
from watchtower.limits import INT32_MAX, SafeStr

router = APIRouter(tags=["security"], responses=problem_responses(401, 403, 422))


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor: str
    user_id: int | None
    token_id: int | None
    method: str
    route: str
    path: str
    params: dict[str, Any]
    status: int
    client: str | None


def _utc(field: str, value: datetime | None) -> datetime | None:
    """In UTC (no offset means UTC already); a moment outside the calendar once converted is a 422."""
    try:
        return None if value is None else to_utc(value)
    except OverflowError as exc:
        raise Invalid(f"{field} is out of range", errors=[field_error(f"query.{field}", "out of range")]) from exc


@router.get("/audit", response_model=list[AuditRead])
def read_audit(
    session: SessionDep, response: Response,
    actor: Annotated[SafeStr | None, Query(max_length=200, description="A handle, pipeline:<name>, api-token")] = None,
    since: Annotated[datetime | None, Query(description="From this moment (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="Before this moment")] = None,
    method: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3,7}$")] = None,
    path_prefix: Annotated[SafeStr | None, Query(max_length=2000, description="Paths starting with this")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    before: Annotated[int | None, Query(ge=1, le=INT32_MAX, description="Next page: the X-Next-Before header")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Any]:
    """Writes, newest first; `X-Next-Before` names the `before` value of the next page when there is one."""
    entries = audit.search(session, actor=actor, since=_utc("since", since), until=_utc("until", until),
                           method=method, path_prefix=path_prefix,
                           status=status, before_id=before, limit=limit)
    if len(entries) == limit:
        response.headers["X-Next-Before"] = str(entries[-1].id)
    return entries
