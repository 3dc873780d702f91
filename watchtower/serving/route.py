"""The predict route's handler: a well-formed request goes straight to the endpoint, anything else through
FastAPI's own handler, so every refusal (401, 422) is the one FastAPI gives and the OpenAPI document (built from
the route's signature, not its handler) does not change.

FastAPI's handler solves the route's dependencies on every request (the app's query check, the bearer guard,
the path and body parameters): about a fifth of the event loop's time per predict at batch 1. Here each of them
is checked directly, as strictly, and whatever does not pass plainly falls through.
"""

import re
from collections.abc import Callable, Coroutine
from typing import Any

import fastapi.routing
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from watchtower.auth.bearer import require_token
from watchtower.events.schemas import PredictRequest
from watchtower.registry.schemas import NAME
from watchtower.strict_query import reject_unknown_query

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_NAME = re.compile(NAME)


class PredictRoute(APIRoute):
    """An APIRoute for `(name, body: PredictRequest, request)` endpoints that skips FastAPI's dependency solving
    for requests it would pass unchanged."""

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        endpoint = self.endpoint
        if not _checked_here(self):
            return standard

        async def handler(request: Request) -> Response:
            body = await _plain_body(request)
            if body is None:
                return await standard(request)
            response: Response = await endpoint(request.path_params["name"], body, request)
            return response

        return handler


def _checked_here(route: APIRoute) -> bool:
    """Whether _plain_body checks everything the route's dependencies do (a dependency added later, and the
    route goes back to FastAPI's handler)."""
    # FastAPI >= 0.16x builds an included route's handler inside the inclusion's context, whose dependant holds
    # the app's and the router's dependencies (earlier versions copied the route with all of them).
    included = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = included.get() if included is not None else None
    dependant = (context if context is not None and context.original_route is route else route).dependant
    return ({d.call for d in dependant.dependencies} <= {reject_unknown_query, require_token}
            and [p.name for p in dependant.path_params] == ["name"] and not dependant.query_params
            and not dependant.header_params and not dependant.cookie_params
            and [p.name for p in dependant.body_params] == ["body"])


async def _plain_body(request: Request) -> PredictRequest | None:
    """The validated body when every dependency of the route would pass as it stands, else None."""
    scope = request.scope
    # reject_unknown_query: no query; require_token: the access check let a caller through; the path parameter:
    # ModelName's pattern, matched whole (re's `$` would also take a trailing newline).
    if (scope["query_string"] or scope.get("state", {}).get("principal") is None
            or not _NAME.fullmatch(request.path_params.get("name", ""))):
        return None
    if request.headers.get("content-type", "").partition(";")[0].strip().lower() != "application/json":
        return None  # FastAPI decides what else it reads as JSON
    try:
        raw = await request.body()
    except ClientDisconnect:  # FastAPI's handler meets the same stream and answers as it always has
        return None
    if not raw:
        return None
    try:  # as FastAPI's handler: json.loads (request.json), then the model validated in Python mode
        return PredictRequest.model_validate(await request.json())
    except Exception:  # any refusal (bad JSON, too deep, invalid): FastAPI's handler gives its own answer
        return None
