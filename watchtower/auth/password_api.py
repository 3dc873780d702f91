"""Passwords over JSON: an admin sets anyone's; a person changes their own by proving the current one."""

from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from watchtower.auth.bearer import WriteAccess
from watchtower.auth.passwords import MAX_LENGTH, MIN_LENGTH
from watchtower.auth.signin import WRONG, authenticate, client_address, set_password
from watchtower.auth.throttle import Throttled
from watchtower.auth.users import Handle, get_user
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import Unauthorized, problem, problem_responses
from watchtower.limits import SafeStr

router = APIRouter(prefix="/auth", tags=["auth"])
Password = Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: Password


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: SafeStr = Field(min_length=1, max_length=64)
    current_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: Password


# Admin only: the lead maps WriteAccess to the admin role when roles land.
@router.put("/users/{handle}/password", status_code=204, dependencies=WriteAccess,
            responses=problem_responses(401, 404, 422))
def set_user_password(handle: Handle, body: PasswordSet, session: SessionDep) -> Response:
    """Set a person's password (stored as an argon2id hash); every session of theirs ends."""
    set_password(session, get_user(session, handle), body.password, utcnow())
    session.commit()
    return Response(status_code=204)


@router.post("/change-password", status_code=204, responses=problem_responses(401, 422, 429))
def change_own_password(body: PasswordChange, request: Request, session: SessionDep) -> Response:
    """Change your own password by giving the current one (throttled like sign-in); your sessions end."""
    now = utcnow()
    try:
        user = authenticate(session, body.handle, body.current_password,
                            client_address(request.client and request.client.host), request.app.state.settings, now)
    except Throttled as exc:
        return problem(429, "Too many requests", str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    if user is None:
        session.commit()  # the failure counts
        raise Unauthorized(WRONG)
    set_password(session, user, body.new_password, now, field="body.new_password")
    session.commit()
    return Response(status_code=204)
