"""The FastAPI application: routes, problem-details errors, /metrics, and the scheduler's lifespan."""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine

from watchtower.auth.access import Authorize
from watchtower.body_limit import BodyLimit
from watchtower.clock import utcnow
from watchtower.db import engine_for
from watchtower.edges.wiring import install_edges
from watchtower.errors import document_problems, install_handlers, problem, problem_responses
from watchtower.lazy_routes import LazyRoutes, LoadRoutes
from watchtower.route_manifest import PATHS, ROUTERS
from watchtower.runtime import Runtime
from watchtower.settings import Settings
from watchtower.strict_query import reject_unknown_query

if TYPE_CHECKING:
    from watchtower.gauges import Samples, StateReader

log = logging.getLogger(__name__)

# What a warm-up (WATCHTOWER_ROUTES_WARM_UP) loads first: the hot paths, predict and the events API.
WARM_FIRST = ("watchtower.serving.api", "watchtower.events.api")
# /healthz's answer, as FastAPI would infer it from the return annotation: inferring it there imports pydantic.v1
# (to check the type is no v1 model), ~25 ms of CPU before the first /healthz; the first router pays it instead.
HEALTH_SCHEMA = {"additionalProperties": {"type": "string"}, "type": "object", "title": "Response Health Healthz Get"}
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
    runtime.metrics.watch_state(_StateOnScrape(runtime.engine, settings.metrics_analytics_ttl_s))

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
    # The routers are imported by the first request that can match them (watchtower/lazy_routes.py), before the
    # access check looks for its route.
    app.state.routes = routes = LazyRoutes(app, ROUTERS, PATHS)
    app.add_middleware(LoadRoutes, routes=routes, openapi_url=app.openapi_url, warm_up=settings.routes_warm_up,
                       first=WARM_FIRST)
    install_edges(app, settings)  # issue 13: trusted hosts, security headers, /static, offline /docs
    app.state.page_error = _page_error  # form mistakes on the pages get an HTML page, not JSON
    routes.place()  # each router's placeholder where its include_router used to be

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus exposition of every metric (state gauges are read from the database now)."""
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"], response_model=None,
             responses={200: {"content": {"application/json": {"schema": HEALTH_SCHEMA}}}})
    def health() -> dict[str, str]:
        """Liveness: the process answers. It does not touch the database (restarting would not fix that: see
        /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses=problem_responses(503))
    def ready() -> Response:
        """Readiness: 503 naming what is wrong when the database is unreachable or a monitor has stalled."""
        from watchtower import readiness  # its queries and models: loaded by the first probe

        found = readiness.problems(runtime.engine, utcnow(), settings.ready_stale_intervals)
        if found:
            detail = "; ".join(f"{p['field']}: {p['reason']}" for p in found)
            return problem(503, "Not ready", detail, found, headers={"Retry-After": "30"})
        return JSONResponse({"status": "ready"})

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/postmortems")

    _add_problem_schema(app, routes)
    return app


class _StateOnScrape:
    """The state gauges' reader (watchtower/gauges.py: queries over a dozen tables), built by the first scrape."""

    def __init__(self, engine: Engine, analytics_ttl_s: float) -> None:
        self.engine, self.analytics_ttl_s = engine, analytics_ttl_s
        self._reader: StateReader | None = None
        self._lock = threading.Lock()  # concurrent first scrapes build one reader (it caches the analytics)

    def __call__(self) -> "Samples":
        with self._lock:
            if self._reader is None:
                from watchtower.gauges import StateReader

                self._reader = StateReader(self.engine, self.analytics_ttl_s)
        return self._reader()


def _page_error(request: Request, status: int, title: str, detail: str, errors: list[dict[str, str]]) -> Response:
    """The pages' HTML error (postmortems/pages.py), imported when a page form first goes wrong."""
    from postmortems.pages import error_page

    return error_page(request, status, title, detail, errors)


def _add_problem_schema(app: FastAPI, routes: LazyRoutes) -> None:
    build = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            routes.load_all()  # the document describes every route
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            document_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
