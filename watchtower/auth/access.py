"""The access check in front of every route: who is asking (principal.py), what the route needs (routes.py).

A pure ASGI middleware rather than a FastAPI dependency, so that it also guards the routes FastAPI adds
itself (/docs, /openapi.json) and refuses before a body is read or validated. It records writes in the audit
log (audit.py) once their answer is known.
"""

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, select
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchtower.auth import audit, callers
from watchtower.auth.principal import Principal, bearer_secret, resolve, shared_token
from watchtower.auth.roles import Role
from watchtower.auth.routes import ADMIN, VIEW, Rule, rule_for
from watchtower.clock import utcnow
from watchtower.errors import problem, unavailable
from watchtower.lazy_routes import all_routes
from watchtower.registry.models import MonitoredModel, Pipeline
from watchtower.settings import Settings

log = logging.getLogger(__name__)
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN = "/auth/login"
PAGES = ("/postmortems", "/oncall", "/docs", "/auth")  # answered with HTML: send people to the sign-in
PLAIN_PATH = re.compile(r"[A-Za-z0-9/_.~-]*")  # characters Starlette's URL keeps as they are


@dataclass(frozen=True)
class Route:
    template: str
    regex: re.Pattern[str]
    methods: frozenset[str] | None  # None: a mount, any method


def routes_of(app: FastAPI) -> list[Route]:
    """Every route of the app with its full path template (prefixes of included routers applied), lazily
    placed routers loaded first."""
    return routes_in(all_routes(app))


def routes_in(routes: Sequence[BaseRoute]) -> list[Route]:
    """Every route in `routes` with its full path template."""
    found = []
    for context in iter_route_contexts(routes):
        template, regex = context.path_format, getattr(context, "path_regex", None)
        if template is not None and regex is not None:
            methods = frozenset(context.methods) if context.methods else None
            found.append(Route(template, regex, methods))
    return found


def match(routes: list[Route], method: str, path: str) -> tuple[str | None, dict[str, str]]:
    """The template and raw path parameters of the route that answers; (None, {}) when none does."""
    for route in routes:
        found = route.regex.match(path)
        if found and (route.methods is None or method in route.methods):
            return route.template, found.groupdict()
    return None, {}


def url_path(scope: Scope, request: Request) -> str:
    """request.url.path without building the whole URL (host, port, query) when the path has nothing to escape:
    an audited write pays for it on every request."""
    path: str = scope["path"]
    return path if PLAIN_PATH.fullmatch(path) else request.url.path


def current_principal(request: Request) -> Principal | None:
    """The caller the access check let through (None on open routes and anonymous reads)."""
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    return principal


PrincipalDep = Annotated[Principal | None, Depends(current_principal)]


class Authorize:
    """Refuse what the caller may not do (401 unauthenticated, 403 not allowed), audit what it writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[Route] = []
        self._routes_source: object = None  # the app's route list _routes was read from
        self._callers = callers.Callers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fastapi: FastAPI = scope["app"]
        source = fastapi.routes
        if self._routes_source is not source:  # read again when a router was loaded (watchtower/lazy_routes.py)
            self._routes, self._routes_source = routes_in(source), source
        method = scope["method"]
        template, params = match(self._routes, method, scope["path"])
        # No route: a viewer gets the 404 (or 405); nobody else learns which paths exist.
        rule = (rule_for(method, template) or ADMIN) if template else VIEW
        request = Request(scope)
        try:
            decided = self._decide_in_memory(fastapi, request, rule)
            refusal, principal = decided if decided is not None else await to_thread.run_sync(
                self._decide, fastapi, request, template, params, rule)
        except (OperationalError, PoolTimeout) as exc:  # as the app's own handlers answer it: 503, retry
            log.warning("access check: database unavailable: %s", exc)
            refusal, principal = unavailable("the database cannot be reached or is busy"), None
        status = 500
        audited = method not in SAFE and template is not None and (refusal is None or principal is not None)

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        draft = None
        if audited and template is not None:
            settings: Settings = fastapi.state.settings
            draft = audit.Draft(principal, method, template, url_path(scope, request), params,
                                audit.client_address(request, settings.trusted_proxies))
        try:
            if refusal is not None:
                await refusal(scope, receive, capture)
            else:
                state = scope.setdefault("state", {})
                state["principal"], state[audit.DRAFT] = principal, draft
                await self.app(scope, receive, capture)
        finally:
            if draft is not None and not draft.taken:  # taken: the event writer stores it with the events
                await to_thread.run_sync(self._audit, fastapi, draft, status)

    def _decide_in_memory(self, app: FastAPI, request: Request,
                          rule: Rule) -> tuple[Response | None, Principal | None] | None:
        """The decision without the database (no thread, no session) when it needs none: an open route, the
        shared token, or a bearer token resolved less than WATCHTOWER_AUTH_CACHE_S ago; else None."""
        if rule.role is None:
            return None, None
        secret = bearer_secret(request)
        if secret is None or rule.metrics:
            return None
        settings: Settings = app.state.settings
        principal = shared_token(settings, secret)
        if principal is None:
            principal = self._callers.get(secret)
            if principal is None:
                return None
        if principal.pipeline_id is not None:  # its scope is checked against the path's pipeline or model
            return None
        if not principal.allows(rule.role):
            return _forbidden(f"this needs the {rule.role.value} role; you are {principal.role}"), principal
        return None, principal

    def _remember(self, settings: Settings, request: Request, principal: Principal, since: int) -> None:
        """Keep a bearer token's caller for WATCHTOWER_AUTH_CACHE_S (cookies are always read: sign-out is now)."""
        secret = bearer_secret(request)
        if secret is not None and principal.token_id is not None:
            self._callers.put(secret, principal, settings.auth_cache_s, since)

    def _decide(self, app: FastAPI, request: Request, template: str | None, params: dict[str, str],
                rule: Rule) -> tuple[Response | None, Principal | None]:
        settings: Settings = app.state.settings
        if rule.role is None:
            return None, None
        if rule.metrics and _metrics_open(settings, request):
            return None, None
        with Session(app.state.engine) as session:
            since = callers.generation()
            principal = resolve(request, session, settings, utcnow())
            if principal is not None:
                self._remember(settings, request, principal, since)
            if principal is None:
                if _anonymous_read(settings, request, rule):
                    return None, None
                return _unauthenticated(request, template), None
            if principal.pipeline_id is not None:
                if rule.pipeline and template is not None and _own_pipeline(session, principal, template, params):
                    return None, principal
                return _forbidden("a pipeline token may only poll its own pipeline and send data for that "
                                  "pipeline's models"), principal
        if not principal.allows(rule.role):
            return _forbidden(f"this needs the {rule.role.value} role; you are {principal.role}"), principal
        return None, principal

    def _audit(self, app: FastAPI, draft: audit.Draft, status: int) -> None:
        try:
            with Session(app.state.engine) as session:
                audit.insert_rows(session, [draft.values(status)])
                session.commit()
        except Exception:  # the write is done; a lost audit row is logged, never turned into a failed request
            log.exception("could not record %s %s in the audit log", draft.method, draft.route)


def _metrics_open(settings: Settings, request: Request) -> bool:
    """/metrics without a user: when public, or with the scrape token."""
    if settings.metrics_public:
        return True
    secret, token = bearer_secret(request), settings.metrics_token
    return (token is not None and secret is not None
            and secrets.compare_digest(secret.encode(), token.get_secret_value().encode()))


def _anonymous_read(settings: Settings, request: Request, rule: Rule) -> bool:
    """WATCHTOWER_ANONYMOUS_READ opens what a viewer may read (GET/HEAD) to callers without a token; a token
    that is sent must still be good."""
    return (settings.anonymous_read and request.method in ("GET", "HEAD") and rule.role == Role.viewer
            and not rule.metrics and "authorization" not in request.headers)


def _own_pipeline(session: Session, principal: Principal, template: str, params: dict[str, str]) -> bool:
    """Whether the path names the token's pipeline, or a model of it."""
    name = params.get("name")
    if template.startswith("/pipelines/{name}"):
        pipeline = session.exec(select(Pipeline).where(Pipeline.name == name)).first()
        return pipeline is not None and pipeline.id == principal.pipeline_id
    if template.startswith("/models/{name}"):
        model = session.exec(select(MonitoredModel).where(MonitoredModel.name == name)).first()
        return model is not None and model.pipeline_id == principal.pipeline_id
    return False


def _unauthenticated(request: Request, template: str | None) -> Response:
    """Pages send people to the sign-in (and back, to a path of ours); the API answers 401."""
    path = request.url.path
    page = template == "/" or any(path == prefix or path.startswith(f"{prefix}/") for prefix in PAGES)
    if request.method in ("GET", "HEAD") and page:
        target = path + (f"?{request.url.query}" if request.url.query else "")
        if not target.startswith("/") or target.startswith(("//", "/\\")):
            target = "/"  # never a foreign host: //evil.example is a host, not a path
        return RedirectResponse(f"{SIGN_IN}?next={quote(target, safe='/')}", status_code=303)
    if "authorization" in request.headers:
        detail = "the bearer token is unknown, expired or revoked, or its owner is deactivated"
    elif page:  # a page form posted without a session (signed out, or it expired)
        detail = f"sign in at {SIGN_IN}, then send the form again"
    else:
        detail = "sign in, or send a token: Authorization: Bearer <token>"
    return problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def _forbidden(detail: str) -> Response:
    return problem(403, "Forbidden", detail)
