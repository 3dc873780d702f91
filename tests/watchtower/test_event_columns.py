"""columns.read_events / event_columns: the events API's Arrow path stores exactly what the usual path (parse_events,
check_columns, event_table) stores, and leaves every body it cannot vouch for to that path."""

import json
from datetime import UTC, datetime
from typing import Any

import hypothesis
import pyarrow as pa
import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from watchtower.errors import Invalid
from watchtower.events import api, columns
from watchtower.events.batch import parse_events
from watchtower.events.columns import event_columns, read_events
from watchtower.events.frames import event_table, utc_array
from watchtower.events.models import IngestRejection
from watchtower.events.validation import check_columns

JSON = "application/json"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FEATURES = [{"name": "x", "type": "numeric"}, {"name": "n", "type": "numeric", "nullable": True},
            {"name": "c", "type": "categorical"}, {"name": "d", "type": "categorical", "nullable": True}]


def usual(raw: bytes, task: str) -> pa.Table | None:
    """What the usual path stores for this body, or None where it answers 422."""
    try:
        events = parse_events((raw, JSON))
        features = check_columns([e["features"] for e in events], FEATURES, "body.events.{i}.features")
    except (RequestValidationError, Invalid):
        return None
    return event_table([e["id"] for e in events], utc_array([e.get("ts") for e in events], default=NOW), features,
                       [e.get("prediction") for e in events], task, latency=[e.get("latency_ms") for e in events],
                       errors=[e.get("error") for e in events], scores=[e.get("scores") for e in events],
                       versions=[e.get("version") for e in events], received_at=NOW)


def arrow(raw: bytes, task: str) -> pa.Table | None:
    events = read_events(raw, JSON)
    return None if events is None else event_columns(events, FEATURES, task, NOW)


def body(*events: dict[str, Any], **dumps: Any) -> bytes:
    return json.dumps({"events": list(events)}, **dumps).encode()


def event(i: int = 0, **fields: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "features": {"x": 1.5, "n": None, "c": "red", "d": "blue"}} | fields


COMMON = [
    body(event(0, ts="2026-11-02T08:30:00.123456+00:00", prediction=1, latency_ms=2.5),
         event(1, ts="2026-11-02T10:30:00+02:00", prediction=0, latency_ms=0)),
    body(event(0, features={"x": 3, "c": "ünï ✓ 😀", "d": None}, prediction="yes", version="v1", error="boom"),
         event(1, features={"x": 2**53 + 1, "n": 7, "c": "[{}] \\ \n", "d": "x"}, prediction=None, version="v1"),
         ensure_ascii=False),
    body(event(0, ts="2026-11-02T08:30:00Z", scores={"0": 0.25, "1": 0.75}, prediction=1.0),
         event(1, scores=None, prediction=2.0), event(2, scores={"1": 1, "0": 0}, prediction=0)),
    body(*(event(i, features={"x": i / 7, "n": -i, "c": "😀" * (i % 3 + 1)}, prediction=i % 3) for i in range(50))),
    body(event(0, id="quote\"d", features={"x": 1, "c": "é \\ \t"})),  # escapes: json_scan decodes them
]


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("raw", COMMON)
def test_common_bodies_take_the_arrow_path_and_store_the_same(raw: bytes, task: str) -> None:
    want, got = usual(raw, task), arrow(raw, task)
    assert want is not None and got is not None
    assert got.schema == want.schema and got.equals(want)


@pytest.mark.parametrize("raw", [
    body(event(0, ts="2026-11-02T08:30:00")),  # naive: UTC on the usual path
    body(event(0, ts=1_700_000_000)),
    body(event(0, prediction=True)),
    body(event(0, prediction=[1, 2])),
    body(event(0, prediction={"k": 1})),
    body(event(0, features={"x": 1.0, "c": 3})),  # a number as a category: the usual path spells it "3"
    body(event(0, features={"x": float("nan"), "n": None, "c": "a"})),
    body(event(0, scores={"0": 0.5}), event(1, scores={"1": 0.5})),  # absent and null classes look alike
    json.dumps({"events": [event(0)]}, indent=2).encode().replace(b'"e0"', b'"e0", "id": "dup"'),
    b'{"events": [' + b",".join([json.dumps(event(0)).encode()] * 2) + b"]}\n{\"events\": []}",
])
def test_bodies_left_to_the_usual_path(raw: bytes) -> None:
    assert arrow(raw, "classification") is None


@pytest.mark.parametrize("nesting", [b"[", b'{"k": '])
def test_a_deeply_nested_body_never_reaches_the_parser(nesting: bytes) -> None:
    closing = b"]" if nesting == b"[" else b"}"
    raw = b'{"events": [{"id": "a", "features": {}, "prediction": ' + nesting * 200_000 + b"1" + \
        closing * 200_000 + b"}]}"
    assert read_events(raw, JSON) is None  # Arrow's parser recurses: this depth would crash the process


_TEXT = st.text(alphabet=st.sampled_from(["a", "é", "😀", "\x00", '"', "\\", "[", "}", "\ud800"]), max_size=3)
_SAFE = st.text(alphabet=st.sampled_from(["a", "é", "😀", " ", "[", "}", "\\", "\n"]), min_size=1, max_size=3)
_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
                    st.sampled_from([0, -0.0, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 1e308]))
_FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**53), 2**53))
_VALUE = st.one_of(st.none(), st.booleans(), _NUMBER, _TEXT, st.just([1]), st.just({"k": 1}))
_TIME = st.one_of(st.none(), st.integers(0, 2**31), st.sampled_from([
    "2026-11-02T08:30:00Z", "2026-11-02T08:30:00.5+05:30", "2026-11-02T08:30:00", "2026-11-02", "2026-02-30T00:00:00Z",
    "1969-12-31T23:59:59Z", "2199-12-31T23:59:59.999999Z", "2200-01-01T00:00:00+00:00", "2026-11-02T08:30:00+24:00",
    "2026-11-02T08:30:00.1234567Z", "2026-11-02 08:30:00Z"]))
_PROBABILITY = st.one_of(st.sampled_from([0, 1, 0.5, -0.1, 1.5, float("nan"), None]), st.floats(0, 1))


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values four times in five, so the Arrow path is taken often enough to be compared."""
    return st.one_of(valid, valid, valid, valid, other)


_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "ts": mostly(st.sampled_from(["2026-11-02T08:30:00Z", "2026-11-02T08:30:00.123456-01:30", None]), _TIME),
    "prediction": mostly(st.one_of(st.none(), _FINITE, _SAFE, st.sampled_from([2**53 + 1, -(2**53) - 1])), _VALUE),
    "latency_ms": mostly(st.one_of(st.none(), st.floats(0, 1e6), st.integers(0, 2**63 - 1)), st.one_of(_NUMBER, _TEXT)),
    "error": mostly(st.one_of(st.none(), _SAFE), st.one_of(_TEXT, st.just("e" * 2001))),
    "version": mostly(st.one_of(st.none(), _SAFE), st.one_of(_TEXT, st.just("v" * 101))),
    "scores": mostly(st.one_of(st.none(), st.fixed_dictionaries({"0": st.floats(0, 1), "1": st.floats(0, 1)})),
                     st.dictionaries(st.sampled_from(["0", "1", "\x00", "k" * 201]),
                                     st.one_of(_PROBABILITY, st.just(2**63 - 1)), max_size=2)),
    "extra": st.just(1)}
_FEATURES = st.fixed_dictionaries({"x": _FINITE, "c": _SAFE}, optional={
    "n": st.one_of(st.none(), _FINITE), "d": st.one_of(st.none(), _SAFE)})


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    odd = {name: draw(st.one_of(_VALUE, st.floats(-1e6, 1e6), st.sampled_from(["red", "blue"])))
           for name in draw(st.sets(st.sampled_from(["x", "n", "c", "d", "other"])))}
    features = draw(mostly(_FEATURES, st.just(odd)))
    chosen = draw(st.sets(st.sampled_from(list(_OPTIONAL)), max_size=4))
    return {"id": draw(mostly(_SAFE, st.one_of(_TEXT, st.just("i" * 201), st.just("")))), "features": features} | {
        name: draw(_OPTIONAL[name]) for name in chosen if name != "extra" or draw(st.integers(0, 3)) == 0}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=4), st.booleans(), st.sampled_from(["classification", "regression"]))
def test_any_body_is_stored_as_the_usual_path_would_or_left_to_it(items: list[dict[str, Any]], ascii_only: bool,
                                                                  task: str) -> None:
    try:
        raw = json.dumps({"events": items}, ensure_ascii=ascii_only).encode()
    except UnicodeEncodeError:  # a lone surrogate: only its escaped spelling is JSON
        return
    got = arrow(raw, task)
    hypothesis.event("arrow path" if got is not None else "usual path")
    if got is not None:
        want = usual(raw, task)
        assert want is not None, raw
        assert got.equals(want), raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=2, max_size=6), st.booleans(), st.sampled_from([", ", ",", " ,\n\t", ",\f"]),
       st.lists(st.sampled_from(["}, {", '}, {"id": "x"', "a},{b"]), max_size=3))
def test_a_body_read_in_two_halves_reads_as_it_does_whole(items: list[dict[str, Any]], ascii_only: bool,
                                                          separator: str, awkward: list[str]) -> None:
    """Large bodies are parsed by Arrow's reader as two halves at once: whatever the body, the halves give what the
    whole gives (here every body counts as large), or the body is parsed whole."""
    for item, text in zip(items, awkward, strict=False):  # the cut's own pattern inside strings
        if isinstance(item.get("features"), dict):
            item["features"]["c"] = text
    try:
        raw = ('{"events": [' + separator.join(json.dumps(e, ensure_ascii=ascii_only) for e in items) + "]}").encode()
    except UnicodeEncodeError:
        return
    whole = columns._read_fields(raw)  # Arrow's reader (bodies json_scan leaves), far under SPLIT_BYTES
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(columns, "SPLIT_BYTES", 0)
        halves = columns._read_fields(raw)
    hypothesis.event("read" if whole is not None else "not read")
    assert (halves is None) == (whole is None), raw
    if whole is not None and halves is not None:
        assert whole.keys() == halves.keys(), raw
        assert all(whole[k].type == halves[k].type for k in whole), raw
        assert all(repr(whole[k].to_pylist()) == repr(halves[k].to_pylist()) for k in whole), raw  # NaN is NaN


def test_a_large_body_is_cut_between_two_events() -> None:
    items = [{"id": f"e{i}", "features": {"x": i, "c": "}, {"}} for i in range(6000)]
    raw = json.dumps({"events": items}).encode()
    assert len(raw) >= columns.SPLIT_BYTES
    first, second = columns._halves(raw) or (b"", b"")
    assert json.loads(first)["events"] + json.loads(second)["events"] == items
    got = columns._read_fields(raw)  # Arrow's reader, as for the bodies json_scan leaves
    assert got is not None and got["id"].to_pylist() == [f"e{i}" for i in range(6000)]


def test_typical_values_pass_the_property_checks() -> None:
    """The property above would pass if the Arrow path gave up on everything: here it takes NaN-free numbers,
    ints past 2**53, every time format it reads, probabilities and long text at their limits."""
    raw = body(event(0, ts="2199-12-31T23:59:59.999999Z", scores={"a": 0, "b": 1}, latency_ms=0, prediction=2**63 - 1,
                     error="e" * 2000, version="v" * 100, id="i" * 200),
               event(1, ts="1970-01-01T00:00:00Z", scores={"a": 0.5, "b": 0.5}, latency_ms=1e308, prediction=-(2**63)),
               event(2, ts="2026-11-02T08:30:00.5-05:30", prediction=5,
                     features={"x": -0.0, "n": 2**63, "c": "", "d": ""}))
    for task in ("classification", "regression"):
        want, got = usual(raw, task), arrow(raw, task)
        assert want is not None and got is not None and got.equals(want)


def test_the_api_stores_common_batches_without_the_usual_parse(mixed: str, client: TestClient, db: Engine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def unused(body: Any) -> Any:
        raise AssertionError("the usual parse ran for a common batch")

    batch = {"events": [{"id": f"a{i}", "ts": "2026-11-02T08:30:00Z", "features": {"f1": i, "f2": None,
                                                                                     "color": "red"},
                         "prediction": 1, "latency_ms": 1.0} for i in range(20)]}
    with monkeypatch.context() as patched:
        patched.setattr(api, "parse_events", unused)
        first = client.post(f"/models/{mixed}/events", json=batch)
        again = client.post(f"/models/{mixed}/events", json=batch)
    assert first.status_code == 200 and first.json() == {"accepted": 20, "duplicates": 0}
    assert again.json() == {"accepted": 0, "duplicates": 20}  # idempotent by event id
    # A feature the model lacks: the usual path answers, naming it, records the refusal and stores nothing.
    bad = {"events": [{"id": "b0", "features": {"f1": 1, "color": "red"}},
                      {"id": "b1", "features": {"f1": 1, "color": "red", "size": 3}}]}
    response = client.post(f"/models/{mixed}/events", json=bad)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body.events.1.features.size", "reason": "unknown feature"}]
    with Session(db) as session:
        assert [(r.kind, r.feature, r.count) for r in session.exec(select(IngestRejection))] == [("extra", "size", 1)]
    assert client.post(f"/models/{mixed}/events", json={"events": [{"id": "b0", "features": {"f1": 1}}]}).json() == {
        "accepted": 1, "duplicates": 0}


def test_a_body_nested_too_deeply_for_any_parser_is_a_422(mixed: str, client: TestClient) -> None:
    """The fast path leaves it to the usual parse, whose json.loads recursion ends in a named 422, not a 500."""
    raw = b'{"events": [{"id": "a", "features": {"f1": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}]}"
    response = client.post(f"/models/{mixed}/events", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "nested too deeply" in response.text
