"""Refuse query parameters a route does not declare: a misspelt filter is a 422, never a silently ignored one."""

from weakref import WeakKeyDictionary

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

# A route's declared parameters never change, so they are read once per route (weakly: tests build many apps).
_declared: WeakKeyDictionary[APIRoute, frozenset[str]] = WeakKeyDictionary()


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
    known = _declared.get(route)
    if known is None:
        known = _declared[route] = declared_query(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = f"takes {', '.join(sorted(known))}" if known else "takes no query parameters"
        reason = f"unknown query parameter; this endpoint {takes}"
        raise RequestValidationError([
            {"loc": ("query", name), "msg": reason, "type": "extra_forbidden", "input": request.query_params.get(name)}
            for name in unknown])
