"""The predict route's direct handler (watchtower/serving/route.py) answers every request exactly as FastAPI's own
handler does, and takes the direct way for well-formed ones."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.factories import BuiltModels
from watchtower.events.schemas import PredictRequest
from watchtower.serving import route

ROW = {"f1": 0.1, "f2": 0.2, "f3": 0.3, "f4": 0.4}
JSON = {"Content-Type": "application/json"}
URL = "/models/churn/predict"

# (case, method arguments): well-formed requests, and every way FastAPI's handler refuses one.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("valid", {"json": {"instances": [ROW, ROW], "ids": ["a", "b"]}}),
    ("valid, charset", {"content": json.dumps({"instances": [ROW], "ids": ["c"]}),
                        "headers": {"Content-Type": "application/json; charset=utf-8"}}),
    ("vendor json type", {"content": json.dumps({"instances": [ROW], "ids": ["d"]}),
                          "headers": {"Content-Type": "application/vnd.api+json"}}),
    ("no content type", {"content": json.dumps({"instances": [ROW], "ids": ["e"]})}),
    ("text/plain", {"content": json.dumps({"instances": [ROW]}), "headers": {"Content-Type": "text/plain"}}),
    ("bad JSON", {"content": '{"instances": [', "headers": JSON}),
    ("too deep", {"content": "[" * 50_000 + "]" * 50_000, "headers": JSON}),
    ("not UTF-8", {"content": b'{"instances": ["\xff"]}', "headers": JSON}),
    ("empty body", {"content": b"", "headers": JSON}),
    ("a list", {"json": [ROW]}),
    ("unknown field", {"json": {"instances": [ROW], "extra": 1}}),
    ("no instances", {"json": {"instances": []}}),
    ("ids of another length", {"json": {"instances": [ROW], "ids": ["x", "y"]}}),
    ("schema mismatch", {"json": {"instances": [{"f1": "high"}], "ids": ["z"]}}),
    ("unknown query", {"json": {"instances": [ROW]}, "params": {"verbose": "1"}}),
    ("bad model name", {"json": {"instances": [ROW]}, "url": "/models/bad%0A/predict"}),
    ("unknown model", {"json": {"instances": [ROW]}, "url": "/models/nope/predict"}),
    ("no token", {"json": {"instances": [ROW]}, "headers": {"Authorization": ""}}),
]


@pytest.fixture
def model(client: TestClient, models: BuiltModels) -> str:
    factories.register_tensor(client, models)
    return "churn"


def answer(client: TestClient, arguments: dict[str, Any]) -> tuple[int, str | None, Any]:
    arguments = dict(arguments)
    response = client.request("POST", arguments.pop("url", URL), **arguments)
    body = response.json()
    if isinstance(body, dict):
        body.pop("latency_ms", None)  # the graph's run time: the one part of an answer that differs
    return response.status_code, response.headers.get("content-type"), body


@pytest.mark.parametrize(("case", "arguments"), CASES, ids=[case for case, _ in CASES])
def test_direct_handler_answers_as_fastapi_does(client: TestClient, model: str, monkeypatch: pytest.MonkeyPatch,
                                                case: str, arguments: dict[str, Any]) -> None:
    taken: list[bool] = []
    plain_body = route._plain_body

    async def spied(request: Any) -> PredictRequest | None:
        body = await plain_body(request)
        taken.append(body is not None)
        return body

    monkeypatch.setattr(route, "_plain_body", spied)
    direct = answer(client, arguments)

    async def never(request: Any) -> None:
        return None

    monkeypatch.setattr(route, "_plain_body", never)  # every request through FastAPI's handler
    assert answer(client, arguments) == direct
    well_formed = case.startswith("valid") or case in ("ids of another length", "schema mismatch", "unknown model")
    assert taken == ([True] if well_formed else [False] if case != "no token" else [])


def test_a_dependency_the_direct_handler_does_not_check_sends_the_route_back_to_fastapi() -> None:
    from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request

    def refuse() -> None:
        raise HTTPException(418, "the extra dependency ran")

    async def endpoint(name: str, body: PredictRequest, request: Request) -> dict[str, str]:
        return {"name": name}

    app = FastAPI()
    router = APIRouter(route_class=route.PredictRoute)
    router.add_api_route("/models/{name}/predict", endpoint, methods=["POST"])
    app.include_router(router, dependencies=[Depends(refuse)])

    @app.middleware("http")
    async def let_in(request: Request, call_next: Any) -> Any:  # what the access check does for a caller
        request.scope.setdefault("state", {})["principal"] = object()
        return await call_next(request)

    with TestClient(app) as other:
        assert other.post("/models/m/predict", json={"instances": [ROW]}).status_code == 418
