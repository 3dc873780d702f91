"""Errors as RFC 9457 problem details (application/problem+json)."""

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from watchtower.limits import explain

if TYPE_CHECKING:  # FastAPI loads with the app: the CLI and the scheduler raise these errors without it
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 5  # how long a client should wait when the database cannot be reached


class WatchtowerError(Exception):
    """A domain error with an HTTP status and a short title."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(WatchtowerError):
    status, title = 404, "Not found"


class Conflict(WatchtowerError):
    status, title = 409, "Conflict"


class Invalid(WatchtowerError):
    """Input that parsed but makes no sense (a bad ONNX file, a row naming an unknown feature)."""

    status, title = 422, "Unprocessable content"


class Unauthorized(WatchtowerError):
    status, title = 401, "Unauthorized"


class Unavailable(WatchtowerError):
    """Transient: the request may succeed if resent later (it is answered with Retry-After)."""

    status, title = 503, "Service unavailable"


class Forbidden(WatchtowerError):
    status, title = 403, "Forbidden"


class PayloadTooLarge(WatchtowerError):
    status, title = 413, "Payload too large"


class UnsupportedMediaType(WatchtowerError):
    status, title = 415, "Unsupported media type"


def field_error(field: str, reason: str) -> dict[str, str]:
    """One entry of a problem's `errors` list."""
    return {"field": field, "reason": reason}


def multipart(parts: dict[str, str]) -> Any:
    """A dependency refusing any body but multipart/form-data with a 415 naming the parts the endpoint takes
    (run before the form is parsed, so a JSON body is not reported as 'spec: Field required')."""
    from fastapi import Depends, Request

    def check(request: Request) -> None:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "multipart/form-data":
            listed = ", ".join(parts)
            raise UnsupportedMediaType(
                f"this endpoint takes multipart/form-data with the parts {listed}, not "
                f"{content_type or 'a body without a content type'} (with curl: one -F name=@file per part)",
                errors=[field_error("header.content-type", "must be multipart/form-data")]
                + [field_error(f"body.{name}", what) for name, what in parts.items()])

    return Depends(check)


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> "JSONResponse":
    """Render a problem-details response."""
    from fastapi.responses import JSONResponse

    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc_to_field(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts)


def install_handlers(app: "FastAPI") -> None:
    """Render domain errors, HTTP errors, validation errors and crashes as problem details."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException

    @app.exception_handler(WatchtowerError)
    async def _domain(_: Request, exc: WatchtowerError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_S)}
        return problem(exc.status, exc.title, exc.detail, exc.errors, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [field_error(_loc_to_field(e["loc"]), explain(e)) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        page_error = getattr(request.app.state, "page_error", None)
        if page_error is not None and request.url.path.startswith("/postmortems"):
            return page_error(request, 422, "Invalid form", detail, errors)  # type: ignore[no-any-return]
        return problem(422, "Validation failed", detail, errors)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, _reason(exc.status_code), str(exc.detail), headers=headers)

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(_: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("database pool exhausted: %s", exc)
        return unavailable("no database connection was free in time")

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # Unreachable, restarting, reaped connections, SQLite's lock timeout: transient, so 503 + Retry-After.
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            log.warning("database unavailable: %s", str(exc.orig or exc).strip())
            return unavailable("the database cannot be reached or is busy")
        return await _crash(request, exc)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        # The server may drop the connection after a crash: say so, so keep-alive clients reconnect cleanly.
        return problem(500, "Internal server error", f"{type(exc).__name__}; see the server log",
                       headers={"Connection": "close"})


def unavailable(detail: str) -> "JSONResponse":
    """503 with Retry-After: the database cannot be reached or is busy."""
    return problem(503, "Service unavailable", f"{detail}; retry in {RETRY_AFTER_S} s",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


PROBLEM_RESPONSE = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem statuses a route can return."""
    return {s: {"description": DESCRIPTIONS.get(s, "Error"), **PROBLEM_RESPONSE} for s in statuses}


DESCRIPTIONS = {
    400: "Malformed request (a body that is not JSON, a broken multipart stream)",
    401: "Not signed in: a missing, unknown, expired or revoked bearer token",
    403: "Signed in, but the role (or the pipeline token's scope) does not allow this",
    404: "Not found", 409: "Conflict",
    413: "Body or upload too large (WATCHTOWER_MAX_BODY_BYTES, WATCHTOWER_MAX_UPLOAD_BYTES)",
    415: "Wrong content type; `errors` names the parts the endpoint takes",
    422: "Invalid input; `errors` names each field and reason",
    429: "Too many failed attempts; retry after `Retry-After` seconds",
    503: "The database cannot be reached; retry after `Retry-After` seconds",
}


def document_problems(schema: dict[str, Any]) -> None:
    """Add the problems any operation can return to every operation of an OpenAPI schema (in place)."""
    retry_after = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            statuses = [400, 401, 403, 422, 503] + ([413] if "requestBody" in operation else [])
            for status in statuses:
                entry = {"description": DESCRIPTIONS[status], **PROBLEM_RESPONSE}
                if status == 503:
                    entry["headers"] = retry_after
                responses = operation.setdefault("responses", {})
                # FastAPI documents its own 422 body; ours is problem details, like every other error.
                if status == 422 or str(status) not in responses:
                    responses[str(status)] = entry
