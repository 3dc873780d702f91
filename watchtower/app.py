"""The FastAPI application: routes, problem-details errors, /metrics, and the scheduler's lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine

from alerts import alertmanager
from alerts.oncall import api as oncall_api
from alerts.oncall import escalation_api, escalation_pages
from alerts.oncall import pages as oncall_pages
from alerts.oncall import people as oncall_people
from alerts.outbox import api as outbox_api
from alerts.silences import api as silences_api
from alerts.silences import pages as silences_pages
from alerts.slack import interactions as slack_interactions
from postmortems import api as incidents_api
from postmortems import pages
from watchtower import readiness
from watchtower.auth import audit_api, password_api, tokens_api
from watchtower.auth import pages as auth_pages
from watchtower.auth import users as users_api
from watchtower.auth.access import Authorize
from watchtower.body_limit import BodyLimit
from watchtower.checks import api as checks_api
from watchtower.clock import utcnow
from watchtower.db import engine_for
from watchtower.edges.wiring import install_edges
from watchtower.errors import document_problems, install_handlers, problem, problem_responses
from watchtower.events import api as events_api
from watchtower.events import profiles_api
from watchtower.gauges import StateReader
from watchtower.policy import api as policy_api
from watchtower.policy import holds_api
from watchtower.registry import api as registry_api
from watchtower.runtime import Runtime
from watchtower.serving import api as serving_api
from watchtower.settings import Settings
from watchtower.strict_query import reject_unknown_query

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
    runtime = Runtime(settings, engine or engine_for(settings))
    runtime.metrics.watch_state(StateReader(runtime.engine, settings.metrics_analytics_ttl_s))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.writer.start()
        if settings.scheduler_enabled:
            from watchtower.scheduler.supervisor import MonitorScheduler

            app.state.scheduler = MonitorScheduler(runtime)
            app.state.scheduler.start()
        yield
        if app.state.scheduler is not None:
            app.state.scheduler.shutdown()
        runtime.writer.stop()  # after the server stopped taking requests: every buffered event is flushed

    app = FastAPI(title="Watchtower", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  dependencies=[Depends(reject_unknown_query)],  # a misspelt query parameter is a 422
                  description="Watches production ML models, acts when they break, remembers every failure.")
    app.state.settings, app.state.engine, app.state.runtime = settings, runtime.engine, runtime
    app.state.metrics, app.state.cache, app.state.scheduler = runtime.metrics, runtime.cache, None
    install_handlers(app)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(Authorize)  # who may call what (watchtower/auth/routes.py), audit of writes
    install_edges(app, settings)  # issue 13: trusted hosts, security headers, /static, offline /docs
    app.state.page_error = pages.error_page  # form mistakes on the pages get an HTML page, not JSON
    for module in (registry_api, serving_api, events_api, checks_api, incidents_api, pages):
        app.include_router(module.router)
    app.include_router(incidents_api.writes)
    app.include_router(checks_api.writes)
    app.include_router(outbox_api.router)
    app.include_router(policy_api.router)
    app.include_router(users_api.router)
    app.include_router(tokens_api.router)
    app.include_router(audit_api.router)
    app.include_router(auth_pages.router)  # issue 13: page sign-in per person, passwords
    app.include_router(password_api.router)
    app.include_router(holds_api.router)
    app.include_router(profiles_api.router)  # issue 15: profiles posted from a data lake
    for router in (silences_api.router, silences_pages.router, alertmanager.router):  # issue 11: silences, AM in
        app.include_router(router)
    app.include_router(oncall_api.router)
    app.include_router(oncall_pages.router)
    app.include_router(oncall_people.router)
    for router in (escalation_api.router, escalation_api.writes, escalation_pages.router):  # issue 11: escalation
        app.include_router(router)
    app.include_router(slack_interactions.router)  # signed by Slack, not behind the bearer token

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus exposition of every metric (state gauges are read from the database now)."""
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, str]:
        """Liveness: the process answers. It does not touch the database (restarting would not fix that: see
        /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses=problem_responses(503))
    def ready() -> Response:
        """Readiness: 503 naming what is wrong when the database is unreachable or a monitor has stalled."""
        found = readiness.problems(runtime.engine, utcnow(), settings.ready_stale_intervals)
        if found:
            detail = "; ".join(f"{p['field']}: {p['reason']}" for p in found)
            return problem(503, "Not ready", detail, found, headers={"Retry-After": "30"})
        return JSONResponse({"status": "ready"})

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
