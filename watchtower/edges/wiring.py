"""Puts the safe edges on the app: trusted hosts, security headers, static files, offline docs, and the HTML
answer to a refused page form."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from watchtower.auth.page_refusal import PageRefused, secure_cookies
from watchtower.edges import docs
from watchtower.edges.headers import SecurityHeaders
from watchtower.edges.hosts import TrustedHosts, trusted_hosts
from watchtower.settings import Settings

STATIC = Path(__file__).parents[1] / "static"


def install_edges(app: FastAPI, settings: Settings) -> None:
    """Add the middlewares (outermost: the Host check runs before anything else), /static and /docs."""
    app.add_middleware(SecurityHeaders, https=secure_cookies(settings))
    app.add_middleware(TrustedHosts, hosts=trusted_hosts(settings))
    app.mount("/static/swagger", StaticFiles(directory=docs.swagger_assets()), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(docs.router)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        page_error = request.app.state.page_error
        return page_error(request, exc.status, exc.title, exc.detail, exc.errors)  # type: ignore[no-any-return]

    app.add_exception_handler(PageRefused, refused)
