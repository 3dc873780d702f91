"""The FastAPI application: routes, problem-details errors, /metrics, and the scheduler's lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from postmortems import api as incidents_api
from postmortems import pages
from watchtower.body_limit import BodyLimit
from watchtower.checks import api as checks_api
from watchtower.db import make_engine
from watchtower.errors import document_problems, install_handlers
from watchtower.events import api as events_api
from watchtower.gauges import StateReader
from watchtower.registry import api as registry_api
from watchtower.runtime import Runtime
from watchtower.serving import api as serving_api
from watchtower.settings import Settings

log = logging.getLogger(__name__)

PROBLEM_SCHEMA = {
    "type": "object", "description": "RFC 9457 problem details",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object", "properties": {
                       "field": {"type": "string"}, "reason": {"type": "string"}}}}},
}


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; the caller owns migrations (`watchtower serve` runs them first)."""
    settings = settings or Settings()
    runtime = Runtime(settings, engine or make_engine(settings.database_url))
    runtime.metrics.watch_state(StateReader(runtime.engine, settings.metrics_analytics_ttl_s))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.scheduler_enabled:
            from watchtower.scheduler import MonitorScheduler

            app.state.scheduler = MonitorScheduler(runtime)
            app.state.scheduler.start()
        yield
        if app.state.scheduler is not None:
            app.state.scheduler.shutdown()

    app = FastAPI(title="Watchtower", version="0.1.0", lifespan=lifespan,
                  description="Watches production ML models, acts when they break, remembers every failure.")
    app.state.settings, app.state.engine, app.state.runtime = settings, runtime.engine, runtime
    app.state.metrics, app.state.cache, app.state.scheduler = runtime.metrics, runtime.cache, None
    install_handlers(app)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    app.state.page_error = pages.error_page  # form mistakes on the pages get an HTML page, not JSON
    for module in (registry_api, serving_api, events_api, checks_api, incidents_api, pages):
        app.include_router(module.router)
    app.include_router(incidents_api.writes)
    app.include_router(checks_api.writes)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus exposition of every metric (state gauges are read from the database now)."""
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, str]:
        """Liveness and database reachability."""
        with Session(runtime.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/postmortems")

    _add_problem_schema(app)
    return app


def _add_problem_schema(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            document_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
