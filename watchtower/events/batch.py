"""Parse a POST /events body at ingest rate, with the same 422s as validating it as an EventBatch.

Validating 10,000 EventIn models from a parsed dict costs a Python call per event and per bounded field
(the UTC range of `ts`, the bounds of `prediction`, the range of `scores`). The fast path parses the raw
bytes straight into lean models (pydantic-core checks what it can natively: lengths, NUL patterns, finite
non-negative latency) and checks the rest a column at a time. A body either path doubts is validated as
FastAPI would have validated it, so every 422 names the same index and field with the same reason.
"""

import email.message
import json
import math
from datetime import datetime
from itertools import chain
from typing import (
    Annotated,
    Any,
    NotRequired,  # pydantic needs these TypedDicts on Python < 3.12
    cast,
)

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from watchtower.events.schemas import MAX_BATCH, EventBatch
from watchtower.limits import EARLIEST, INT64_MAX, LATEST, FiniteFloat, JsonValue, SafeStr, storable


@with_config(ConfigDict(extra="forbid"))
class LeanEvent(TypedDict):
    """EventIn without its Python validators, as a dict (pydantic-core builds dicts faster than models); each
    field keeps the native checks it had."""

    id: Annotated[SafeStr, Field(min_length=1, max_length=200)]
    ts: NotRequired[datetime | None]
    features: dict[str, Any]
    prediction: NotRequired[Any]
    scores: NotRequired[dict[Annotated[SafeStr, Field(max_length=200)], float] | None]
    latency_ms: NotRequired[Annotated[FiniteFloat | None, Field(ge=0)]]
    error: NotRequired[Annotated[SafeStr | None, Field(max_length=2000)]]
    version: NotRequired[Annotated[SafeStr | None, Field(max_length=100)]]


@with_config(ConfigDict(extra="forbid"))
class _LeanBatch(TypedDict):
    events: Annotated[list[LeanEvent], Field(min_length=1, max_length=MAX_BATCH)]


_LEAN = TypeAdapter(_LeanBatch)
_BATCH = TypeAdapter(EventBatch)
_JSON = TypeAdapter(JsonValue)


async def raw_body(request: Request) -> tuple[bytes, str | None]:
    """The request's bytes and content type, read on the event loop; parsing runs in the endpoint's thread."""
    return await request.body(), request.headers.get("content-type")


def parse_events(body: tuple[bytes, str | None]) -> list[LeanEvent]:
    """The batch's events, or a RequestValidationError exactly as FastAPI raises it for an EventBatch body."""
    raw, content_type = body
    if raw and is_json(content_type):
        try:
            events: list[LeanEvent] | None = _LEAN.validate_json(raw)["events"]
        except ValidationError:
            events = None
        if events is not None and _bounded(events):
            return events
    return _strict(raw, content_type)


def _bounded(events: list[LeanEvent]) -> bool:
    """Whether the checks EventIn runs in Python pass, done on whole columns."""
    import numpy as np  # numpy and pyarrow load with the first batch, not with the app
    import pyarrow as pa

    times = [t for e in events if (t := e.get("ts")) is not None]
    if times:
        try:
            column = pa.array(times, type=pa.timestamp("us", tz="UTC"))  # naive is UTC, as UtcDatetime takes it
        except (pa.ArrowInvalid, OverflowError):
            return False
        micros = column.cast(pa.int64()).to_numpy()  # compared as numbers: year 0 is no datetime
        if micros.min() < _micros(EARLIEST) or micros.max() >= _micros(LATEST):
            return False
    scores = list(chain.from_iterable(s.values() for e in events if (s := e.get("scores"))))
    if scores and not bool(((p := np.array(scores)) >= 0).all() and (p <= 1).all()):  # NaN fails both
        return False
    return _bounded_json_column([e.get("prediction") for e in events])


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _bounded_json_column(values: list[Any]) -> bool:
    """JsonValue's checks on a column: scalars at once, anything nested value by value."""
    kinds = set(map(type, values))
    if int in kinds:
        ints = [v for v in values if type(v) is int]
        if not (-INT64_MAX - 1 <= min(ints) and max(ints) <= INT64_MAX):
            return False
    if float in kinds and not all(map(math.isfinite, (v for v in values if type(v) is float))):
        return False
    if str in kinds and storable("".join(v for v in values if type(v) is str)) is not None:
        return False
    try:
        for value in values:
            if type(value) in (list, dict):
                _JSON.validate_python(value)
    except ValidationError:
        return False
    return kinds <= {int, float, str, bool, type(None), list, dict}


def documented_body() -> dict[str, Any]:
    """The OpenAPI requestBody of an EventBatch, as FastAPI would document it (definitions inlined)."""
    schema = EventBatch.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


def is_json(content_type: str | None) -> bool:
    """FastAPI's test: application/json or application/*+json (strict: no content type is not JSON)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _strict(raw: bytes, content_type: str | None) -> list[LeanEvent]:
    """FastAPI's parsing and EventBatch's validation; raises its RequestValidationError, or returns the events
    (a body the fast path doubted for a reason EventBatch accepts)."""
    body: Any = None
    if raw:
        body = raw
        if is_json(content_type):
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                               "msg": "JSON decode error", "input": {},
                                               "ctx": {"error": exc.msg}}], body=exc.doc) from exc
            except UnicodeDecodeError as exc:  # JSON is text: bytes that are no UTF-8 (or -16/-32) are no JSON
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.start),
                                               "msg": "JSON decode error", "input": {},
                                               "ctx": {"error": f"not UTF-8 text ({exc.reason})"}}]) from exc
            except RecursionError as exc:  # arrays or objects nested thousands deep: no event is shaped so
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body",),
                                               "msg": "JSON decode error: nested too deeply", "input": {},
                                               "ctx": {"error": "nested too deeply"}}]) from exc
    if body is None:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required",
                                       "input": None}])
    try:
        batch = _BATCH.validate_python(body, from_attributes=True)  # as FastAPI validates a body
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()],
                                     body=body) from exc
    return [cast(LeanEvent, e.model_dump()) for e in batch.events]
