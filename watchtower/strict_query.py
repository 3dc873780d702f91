"""Refuse query parameters a route does not declare: a misspelt filter is a 422, never a silently ignored one."""

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

# A route's declared parameters never change: they are read once and kept on the route itself (routes are
# unhashable, and an id() could be reused by a later app's route).
CACHED = "_watchtower_declared_query"


def declared_query(dependant: Dependant) -> frozenset[str]:
    """Every query parameter name (alias) a route or any of its dependencies declares."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= declared_query(sub)
    return frozenset(names)


async def reject_unknown_query(request: Request) -> None:
    """App-wide dependency: a 422 naming each query parameter the route does not take, and what it does take."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known: frozenset[str] | None = getattr(route, CACHED, None)
    if known is None:
        known = declared_query(route.dependant)
        setattr(route, CACHED, known)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = f"takes {', '.join(sorted(known))}" if known else "takes no query parameters"
        reason = f"unknown query parameter; this endpoint {takes}"
        raise RequestValidationError([
            {"loc": ("query", name), "msg": reason, "type": "extra_forbidden", "input": request.query_params.get(name)}
            for name in unknown])
