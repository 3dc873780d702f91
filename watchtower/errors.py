"""Errors as RFC 9457 problem details (application/problem+json)."""

import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


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
            headers: dict[str, str] | None = None) -> JSONResponse:
    """Render a problem-details response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc_to_field(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts)


def install_handlers(app: FastAPI) -> None:
    """Render domain errors, HTTP errors, validation errors and crashes as problem details."""

    @app.exception_handler(WatchtowerError)
    async def _domain(_: Request, exc: WatchtowerError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.title, exc.detail, exc.errors, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [field_error(_loc_to_field(e["loc"]), e["msg"]) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        page_error = getattr(request.app.state, "page_error", None)
        if page_error is not None and request.url.path.startswith("/postmortems"):
            return page_error(request, 422, "Invalid form", detail, errors)  # type: ignore[no-any-return]
        return problem(422, "Validation failed", detail, errors)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, _reason(exc.status_code), str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal server error", f"{type(exc).__name__}; see the server log")


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


PROBLEM_RESPONSE = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem statuses a route can return."""
    descriptions = {
        400: "Bad request", 401: "Missing or wrong bearer token", 404: "Not found", 409: "Conflict",
        413: "Upload too large", 415: "Wrong content type; `errors` names the parts the endpoint takes",
        422: "Invalid input; `errors` names each field and reason",
    }
    return {s: {"description": descriptions.get(s, "Error"), **PROBLEM_RESPONSE} for s in statuses}
