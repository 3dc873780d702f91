"""parse_events: the fast path gives the events EventBatch gives, and every body it doubts gets EventBatch's 422."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from watchtower.events.batch import parse_events
from watchtower.events.frames import utc_times
from watchtower.events.schemas import EventBatch

JSON = "application/json"


def body(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def expected(raw: bytes) -> list[dict[str, Any]]:
    return [e.model_dump() for e in TypeAdapter(EventBatch).validate_json(raw).events]


def test_fast_path_events_match_eventbatch() -> None:
    raw = body({"id": "a", "features": {"x": 1.5, "c": "red"}, "ts": "2026-01-02T03:04:05+02:00", "prediction": 1,
                "scores": {"0": 0.25, "1": 0.75}, "latency_ms": 3.0, "version": "v1"},
               {"id": "b", "features": {}, "prediction": {"nested": [1, "two", None]}, "error": "boom"},
               {"id": "c", "features": {"x": None}, "ts": "2026-01-02T03:04:05", "prediction": "yes"})
    parsed, want = parse_events((raw, JSON)), expected(raw)
    assert [{k: e.get(k) for k in w if k != "ts"} for e, w in zip(parsed, want, strict=True)] == [
        {k: v for k, v in w.items() if k != "ts"} for w in want]
    # Naive times are UTC on both paths; the frame's column is the same.
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert utc_times([e.get("ts") for e in parsed], now).equals(utc_times([w["ts"] for w in want], now))


@pytest.mark.parametrize(("event", "field"), [
    ({"ts": "1969-12-31T23:59:59Z"}, "body.events.1.ts"),
    ({"ts": "2200-01-01T00:00:00Z"}, "body.events.1.ts"),
    ({"prediction": 2**64}, "body.events.1.prediction"),
    ({"prediction": "a\u0000b"}, "body.events.1.prediction"),
    ({"prediction": {"k": [float("inf")]}}, "body.events.1.prediction"),
    ({"scores": {"0": 1.5}}, "body.events.1.scores"),
    ({"scores": {"0": float("nan")}}, "body.events.1.scores"),
    ({"latency_ms": -1}, "body.events.1.latency_ms"),
    ({"id": ""}, "body.events.1.id"),
    ({"extra": 1}, "body.events.1.extra"),
])
def test_doubted_bodies_get_eventbatch_errors(event: dict[str, Any], field: str) -> None:
    raw = json.dumps({"events": [{"id": "ok", "features": {}}, {"id": "e", "features": {}, **event}]}).encode()
    with pytest.raises(ValidationError) as direct:
        TypeAdapter(EventBatch).validate_python(json.loads(raw))
    with pytest.raises(RequestValidationError) as raised:
        parse_events((raw, JSON))
    errors = raised.value.errors()
    assert [e["loc"] for e in errors] == [("body", *e["loc"]) for e in direct.value.errors()]
    assert ".".join(map(str, errors[0]["loc"])) == field
    assert [e["msg"] for e in errors] == [e["msg"] for e in direct.value.errors()]


def fastapi_errors(raw: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """What FastAPI itself answers for this body to a route taking an EventBatch."""
    app = FastAPI()

    @app.post("/events")
    def events(batch: EventBatch) -> None:
        return None

    headers = {"Content-Type": content_type} if content_type else {}
    response = TestClient(app).post("/events", content=raw, headers=headers)
    assert response.status_code == 422
    return [{k: e[k] for k in ("loc", "type", "msg")} for e in response.json()["detail"]]


@pytest.mark.parametrize(("raw", "content_type"), [
    (b"", JSON),
    (b'{"events": [', JSON),
    (b'{"events": []}', JSON),
    (body({"id": "a", "features": {}}), "text/plain"),
    (body({"id": "a", "features": {}}), None),
    (b"[]", "application/problem+json"),
    (b'"events"', JSON),
])
def test_bodies_fastapi_would_refuse(raw: bytes, content_type: str | None) -> None:
    with pytest.raises(RequestValidationError) as raised:
        parse_events((raw, content_type))
    ours = [{"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]} for e in raised.value.errors()]
    assert ours == fastapi_errors(raw, content_type)


def test_a_body_that_is_not_utf8_is_a_validation_error_not_a_crash() -> None:
    """Found by the API fuzzer: bytes that decode as no Unicode reached json.loads as a UnicodeDecodeError."""
    with pytest.raises(RequestValidationError) as raised:
        parse_events(("꒗".encode() + b"\xff'", JSON))
    [error] = raised.value.errors()
    assert error["type"] == "json_invalid" and error["loc"][0] == "body" and "UTF-8" in error["ctx"]["error"]
