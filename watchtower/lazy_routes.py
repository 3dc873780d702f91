"""Routers imported on first use, in place: a start-up does not build ~150 routes and their models before
answering /healthz.

Each router of watchtower/route_manifest.py gets a placeholder in app.router.routes at the position its routes
take when included. A placeholder never matches a request; instead `LoadRoutes`, a middleware in front of the
access check, imports every module one of whose paths matches the request's path (or the path with its
trailing slash toggled, which the router tries for its redirect) and includes its routers where their
placeholders were. So when the router matches a request, every route that could answer it is in place, in the
eager order, and the routes still missing could not have matched: the answer is the eager app's answer.

What needs every route loads them all first: the OpenAPI document (`load_all`, and LoadRoutes for its URL),
`url_path_for` (a placeholder loads its module and answers for its routes), and tests that walk app.routes.
"""

import importlib
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, FastAPI
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from watchtower import heap

log = logging.getLogger(__name__)


class Placeholder(BaseRoute):
    """Where a router's routes go once its module is imported; matches nothing meanwhile."""

    def __init__(self, routes: "LazyRoutes", module: str, attribute: str) -> None:
        self.routes, self.module, self.attribute = routes, module, attribute

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # LoadRoutes loaded every module that could match before the router looks: this one cannot.
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        """The path of a route of this router: the module is imported, then its routes answer."""
        return self.routes.included(self.module, self.attribute).url_path_for(name, **path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError(f"the placeholder of {self.module}.{self.attribute} was asked to answer")

    def __repr__(self) -> str:
        return f"Placeholder({self.module}.{self.attribute})"


class LazyRoutes:
    """The placeholders of one app, which module's paths match what, and the loading of modules (once)."""

    def __init__(self, app: FastAPI, routers: Iterable[tuple[str, str]], paths: dict[str, tuple[str, ...]]) -> None:
        self.app, self.routers = app, tuple(routers)
        self._lock = threading.Lock()
        self._pending = {module for module, _ in self.routers}
        self._included: dict[tuple[str, str], BaseRoute] = {}
        self.complete = False  # every module loaded: LoadRoutes has nothing left to check
        self._warming = False
        # First path segment -> (module, path template): a request checks only the paths of its segment, compiled
        # by the first request for that segment (all ~100 at start cost ~8 ms that /healthz does not need).
        self._templates: dict[str, list[tuple[str, str]]] = {}
        self._compiled: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        for module, templates in paths.items():
            for template in templates:
                if "{" in _first_segment(template):
                    raise ValueError(f"{template}: a lazily loaded path must start with a fixed segment")
                self._templates.setdefault(_first_segment(template), []).append((module, template))
        missing = self._pending - paths.keys()
        if missing:
            raise ValueError(f"no paths listed for {sorted(missing)}")

    @property
    def pending(self) -> frozenset[str]:
        """The modules whose routers are not in place yet."""
        return frozenset(self._pending)

    def place(self) -> None:
        """Append the routers' placeholders to the app's routes, in their order."""
        self.app.router.routes.extend(Placeholder(self, module, attribute) for module, attribute in self.routers)
        self.app.router._mark_routes_changed()

    def modules_for(self, path: str) -> list[str]:
        """The modules not loaded yet that have a path matching `path` or, as the router's slash redirect tries
        it, `path` with its trailing slash added or removed."""
        if self.complete:
            return []
        paths = [path] if path == "/" else [path, path.rstrip("/") if path.endswith("/") else path + "/"]
        found: list[str] = []
        for candidate in paths:
            for module, regex in self._paths_of(_first_segment(candidate)):
                if module in self._pending and module not in found and regex.match(candidate):
                    found.append(module)
        return found

    def _paths_of(self, segment: str) -> list[tuple[str, re.Pattern[str]]]:
        """The compiled paths under a first segment; only listed segments are kept (not every one a client
        makes up)."""
        compiled = self._compiled.get(segment)
        if compiled is None:
            templates = self._templates.get(segment)
            if templates is None:
                return []
            compiled = self._compiled[segment] = [(module, compile_path(t)[0]) for module, t in templates]
        return compiled

    def load(self, modules: Iterable[str]) -> None:
        """Import these modules and put their routers in place (each at most once, whichever thread asks)."""
        for module in modules:
            self.load_module(module)

    def load_all(self) -> None:
        """Put every router in place: what the OpenAPI document and route-walking checks need."""
        with self._lock:
            pending = [module for module in dict.fromkeys(module for module, _ in self.routers)
                       if module in self._pending]
        self.load(pending)

    def load_module(self, module: str) -> None:
        """Import `module` and include its routers where their placeholders are."""
        with self._lock:
            if module not in self._pending:
                return
            self._include(module)
            self._pending.discard(module)
            self.complete = not self._pending
        # A server froze what start-up built (heap.enable); what this import built lives as long: freeze it too,
        # so full collections keep scanning only what requests make (~1-10 ms here, once per module).
        heap.settle(f"routes:{module}")

    def warm_up(self, first: Iterable[str] = ()) -> None:
        """Load every module in a background thread, `first` ones first (WATCHTOWER_ROUTES_WARM_UP); once. Not
        under the lock, which a load holds for its import: the event loop calls this after requests."""
        if self._warming:
            return
        self._warming = True
        order = list(dict.fromkeys([*first, *(module for module, _ in self.routers)]))
        threading.Thread(target=self.load, args=(order,), name="routes-warm-up", daemon=True).start()

    def included(self, module: str, attribute: str) -> BaseRoute:
        """The included router that replaced this placeholder (its module is loaded first)."""
        self.load_module(module)
        return self._included[module, attribute]

    def _include(self, module_name: str) -> None:
        """Publish a new route list with the module's placeholders replaced by its included routers. A request
        (or the access check) reading the old list meanwhile sees it whole: include_router appends to it, at
        its end, routes that only requests waiting for this load can match."""
        module = importlib.import_module(module_name)
        router = self.app.router
        live = router.routes
        placed = list(live)
        for index, route in enumerate(placed):
            if isinstance(route, Placeholder) and route.module == module_name:
                included_router: APIRouter = getattr(module, route.attribute)
                _check_lifespan_free(included_router, module_name)
                self.app.include_router(included_router)
                placed[index] = self._included[module_name, route.attribute] = live[-1]
        router.routes = placed
        router._mark_routes_changed()
        log.debug("routes of %s loaded", module_name)


class LoadRoutes:
    """Middleware: before a request is routed (and authorized), import the modules whose routes could answer
    it; all of them for the OpenAPI document. The import runs in a worker thread, so requests that need
    nothing new (/healthz) go on meanwhile. With `warm_up`, the first answered request starts loading the
    rest in the background, the `first` modules first."""

    def __init__(self, app: ASGIApp, routes: LazyRoutes, openapi_url: str | None, warm_up: bool = False,
                 first: tuple[str, ...] = ()) -> None:
        self.app, self.routes, self.openapi_url = app, routes, openapi_url
        self.warm_up, self.first = warm_up, first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.routes.complete and scope["type"] in ("http", "websocket"):
            path = get_route_path(scope)
            if path == self.openapi_url:
                await to_thread.run_sync(self.routes.load_all)
            else:
                modules = self.routes.modules_for(path)
                if modules:
                    await to_thread.run_sync(self.routes.load, modules)
        await self.app(scope, receive, send)
        if self.warm_up and not self.routes.complete:
            self.routes.warm_up(self.first)


def all_routes(app: FastAPI) -> list[BaseRoute]:
    """app.routes with every lazily placed router loaded: for whatever walks the routes (the OpenAPI document,
    route checks in tests)."""
    routes = getattr(app.state, "routes", None)
    if isinstance(routes, LazyRoutes):
        routes.load_all()
    return app.routes


def _first_segment(path: str) -> str:
    """"models" for /models/x/predict: the key of the paths a request is checked against."""
    return path.split("/", 2)[1] if path.startswith("/") else path


def _check_lifespan_free(router: APIRouter, module: str) -> None:
    """A router included after start-up misses the app's startup events: refuse one that has any."""
    if router.on_startup or router.on_shutdown:
        raise RuntimeError(f"{module}: a lazily included router must not have startup or shutdown handlers")
