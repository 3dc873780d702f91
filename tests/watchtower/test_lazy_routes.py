"""The app whose routers load at first use is the app whose routers were all included at start: the same routes in
the same order, the same OpenAPI document, the same answer to any request (access check included), and each
module loaded once however many first requests race for it (watchtower/lazy_routes.py)."""

import importlib
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from starlette.routing import NoMatchFound

from tests.conftest import TOKEN
from watchtower.app import create_app
from watchtower.lazy_routes import LazyRoutes, Placeholder, all_routes
from watchtower.route_manifest import PATHS, ROUTERS
from watchtower.settings import Settings

MODULES = list(dict.fromkeys(module for module, _ in ROUTERS))


def _lazy(app: FastAPI) -> LazyRoutes:
    routes: LazyRoutes = app.state.routes
    return routes


def _table(app: FastAPI) -> list[tuple[str, list[str], str]]:
    """Every route in matching order: path, methods, name."""
    return [(str(c.path), sorted(c.methods or []), str(c.name)) for c in iter_route_contexts(app.routes)]


def _loaded(settings: Settings, db: Engine) -> FastAPI:
    """The eager app: every router put in place before any request."""
    app = create_app(settings, engine=db)
    all_routes(app)
    return app


def test_the_manifest_lists_exactly_the_paths_of_each_modules_routers() -> None:
    assert set(PATHS) == set(MODULES)
    for module in MODULES:
        declared = PATHS[module]
        assert len(set(declared)) == len(declared), f"{module}: a path listed twice"
        found = {str(context.path) for name, attribute in ROUTERS if name == module
                 for context in iter_route_contexts(getattr(importlib.import_module(module), attribute).routes)}
        assert found == set(declared), f"{module}: missing {found - set(declared)}, stale {set(declared) - found}"


def test_a_new_app_has_placeholders_and_no_module_routes(settings: Settings, db: Engine) -> None:
    app = create_app(settings, engine=db)
    assert _lazy(app).pending == set(MODULES)
    placeholders = [(r.module, r.attribute) for r in app.routes if isinstance(r, Placeholder)]
    assert placeholders == list(ROUTERS)
    assert not {str(c.path) for c in iter_route_contexts(app.routes)} & {p for ps in PATHS.values() for p in ps}


def test_modules_loaded_in_any_order_take_the_eager_order(settings: Settings, db: Engine) -> None:
    reordered = create_app(settings, engine=db)
    _lazy(reordered).load(reversed(MODULES))
    eager = _loaded(settings, db)
    assert not any(isinstance(r, Placeholder) for r in reordered.routes)
    assert _table(reordered) == _table(eager)
    included = [getattr(r, "original_router", None) for r in eager.routes]
    expected = [getattr(importlib.import_module(module), attribute) for module, attribute in ROUTERS]
    assert [router for router in included if router in expected] == expected  # each where its placeholder was


def test_the_openapi_document_does_not_depend_on_what_was_loaded_first(settings: Settings, db: Engine) -> None:
    partly = create_app(settings, engine=db)
    with TestClient(partly, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert client.get("/incidents").status_code == 200
        assert _lazy(partly).pending == set(MODULES) - {"postmortems.api"}
        served = client.get("/openapi.json").json()
    assert not _lazy(partly).pending
    assert served == partly.openapi() == _loaded(settings, db).openapi()


# Requests whose answers depend on which routes exist: found, 404, 405, slash redirects, pages, static files,
# the docs, a page form; sent by an admin and by nobody (the access check must see the route).
PROBES = [("GET", "/models"), ("GET", "/models/"), ("POST", "/models/none/predict"), ("GET", "/models/none/predict"),
          ("GET", "/models/none/events"), ("GET", "/incidents/"), ("GET", "/incidents/12/export"),
          ("GET", "/incidents/not-a-number"), ("GET", "/postmortems"), ("GET", "/postmortems/"),
          ("POST", "/postmortems/new"), ("GET", "/oncall/"), ("GET", "/users/nobody/shifts.ics"),
          ("DELETE", "/schedules/1"), ("GET", "/nothing"), ("GET", "/nothing/"), ("PUT", "/healthz"),
          ("GET", "/docs"), ("GET", "/static/none.css"), ("POST", "/slack/interactions"), ("GET", "/alertmanager")]


@pytest.mark.parametrize("token", [TOKEN, None], ids=["admin", "anonymous"])
def test_a_first_request_is_answered_as_the_loaded_app_answers_it(settings: Settings, db: Engine,
                                                                  token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with TestClient(_loaded(settings, db), headers=headers, follow_redirects=False) as eager:
        expected = [_answer(eager, method, path) for method, path in PROBES]
    for (method, path), answer in zip(PROBES, expected, strict=True):
        app = create_app(settings, engine=db)  # nothing loaded before this request
        with TestClient(app, headers=headers, follow_redirects=False) as client:
            assert _answer(client, method, path) == answer, (method, path)


def _answer(client: TestClient, method: str, path: str) -> tuple[Any, ...]:
    response = client.request(method, path)
    kind = response.headers.get("content-type", "")
    body = response.json() if "json" in kind else None  # pages carry a fresh CSRF token: their kind, not bytes
    return (response.status_code, kind, response.headers.get("location"), response.headers.get("allow"), body)


def test_the_first_request_loads_only_the_modules_its_path_can_match(settings: Settings, db: Engine) -> None:
    app = create_app(settings, engine=db)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert client.get("/healthz").status_code == 200
        assert _lazy(app).pending == set(MODULES)
        assert client.post("/models/none/predict", json={"instances": [{"x": 1}]}).status_code == 404  # no model
        assert _lazy(app).pending == set(MODULES) - {"watchtower.serving.api"}
        assert client.get("/models").json() == []
        assert _lazy(app).pending == set(MODULES) - {"watchtower.serving.api", "watchtower.registry.api"}


def test_paths_are_compiled_by_the_first_request_under_their_first_segment(settings: Settings, db: Engine) -> None:
    """None at start; a segment no router has (/healthz, or one a client made up) keeps nothing."""
    routes = _lazy(create_app(settings, engine=db))
    assert routes._compiled == {}
    assert routes.modules_for("/healthz") == [] and routes.modules_for("/made-up/path") == []
    assert "watchtower.registry.api" in routes.modules_for("/models")
    assert set(routes._compiled) == {"models"}


def test_an_unloaded_modules_route_is_behind_the_access_check(settings: Settings, db: Engine) -> None:
    app = create_app(settings, engine=db)
    with TestClient(app) as client:
        refused = client.post("/policy/none", json={})  # no such route: a viewer's 404 would tell nobody anything
        assert refused.status_code == 401
        assert client.put("/policy", json={}).status_code == 401  # the route exists: unauthenticated, not 404
        assert client.get("/users/nobody/shifts.ics").status_code == 401


def test_concurrent_first_requests_load_the_module_once(settings: Settings, db: Engine,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(settings, engine=db)
    included: list[object] = []
    include_router = app.include_router

    def counting(router: Any, **kwargs: Any) -> None:
        included.append(router)
        include_router(router, **kwargs)

    monkeypatch.setattr(app, "include_router", counting)
    start, statuses = threading.Barrier(6), []
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:

        def first_request() -> None:
            start.wait()
            statuses.append(client.get("/incidents").status_code)

        threads = [threading.Thread(target=first_request) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 6
    module = importlib.import_module("postmortems.api")
    assert included == [module.router, module.writes]  # its two routers, once each
    assert [getattr(r, "original_router", None) for r in app.routes].count(module.router) == 1


def test_url_path_for_finds_a_route_whose_module_is_not_loaded(settings: Settings, db: Engine) -> None:
    app = create_app(settings, engine=db)
    assert app.url_path_for("search_page") == "/postmortems"
    assert "postmortems.pages" not in _lazy(app).pending
    assert app.url_path_for("read", incident_id=7) == "/incidents/7"
    with pytest.raises(NoMatchFound):
        app.url_path_for("no_such_route")
    assert not _lazy(app).pending  # a name no route has: every module was asked


def test_a_warm_up_loads_every_module_after_the_first_answer(settings: Settings, db: Engine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cold = create_app(settings, engine=db)
    with TestClient(cold) as client:
        assert client.get("/healthz").status_code == 200
    assert _lazy(cold).pending == set(MODULES)  # off by default: nothing loads before it is asked for
    app = create_app(settings.model_copy(update={"routes_warm_up": True}), engine=db)
    order: list[str] = []
    load_module = _lazy(app).load_module

    def recording(module: str) -> None:
        order.append(module)
        load_module(module)

    monkeypatch.setattr(_lazy(app), "load_module", recording)
    with TestClient(app) as client:
        assert _lazy(app).pending == set(MODULES)  # not before the server answers
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 60
        while _lazy(app).pending and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not _lazy(app).pending
    assert order[:2] == ["watchtower.serving.api", "watchtower.events.api"]  # the hot paths first
