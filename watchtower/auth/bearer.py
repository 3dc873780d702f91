"""The guard on every write route: a second line behind the access check (access.py), which decides who may
call what. A write never runs without an authenticated caller, even in an app built without that check."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from watchtower.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="A personal or pipeline token (wt_...), or WATCHTOWER_API_TOKEN")


async def require_token(  # async: no I/O, so FastAPI runs it on the loop instead of a thread-pool hop per request
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Refuse unless the access check let an authenticated caller through (its role was checked there)."""
    if request.scope.get("state", {}).get("principal") is None:
        raise Unauthorized("sign in, or send a token: Authorization: Bearer <token>")


WriteAccess = [Depends(require_token)]
