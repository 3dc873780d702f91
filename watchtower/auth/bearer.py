"""Bearer-token check for write endpoints (roles come later)."""

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from watchtower.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="WATCHTOWER_API_TOKEN")


async def require_token(  # async: no I/O, so FastAPI runs it on the loop instead of a thread-pool hop per request
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Let the request through only with `Authorization: Bearer <WATCHTOWER_API_TOKEN>`."""
    expected = request.app.state.settings.api_token
    if expected is None:
        raise Unauthorized("writes are disabled: the server has no WATCHTOWER_API_TOKEN configured")
    if credentials is None:
        raise Unauthorized("missing bearer token in the Authorization header")
    if not secrets.compare_digest(credentials.credentials.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("wrong bearer token")


WriteAccess = [Depends(require_token)]
