"""json_scan.scan_events: the compiled scan of the usual events body gives what Arrow's JSON reader gives for it,
refuses every body outside its shape (which then goes to the reader as before), and is what the API uses."""

import importlib
import json
import random
from typing import Any

import hypothesis
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.watchtower.test_event_columns import events as odd_events
from watchtower.events import columns, json_scan
from watchtower.events.json_scan import MAX_FEATURES, scan_events
from watchtower.events.schemas import MAX_BATCH


def arrow_fields(raw: bytes) -> dict[str, pa.Array] | None:
    """What Arrow's reader gives (the path every body took before the scan), its depth guard aside: the bodies
    the scan reads are as shallow as an EventBatch, but the guard refuses any with an escaped quote."""
    return columns._arrow_fields(raw)


def assert_same(scanned: dict[str, pa.Array], read: dict[str, pa.Array] | None, raw: bytes) -> None:
    assert read is not None, raw
    assert scanned.keys() == read.keys(), raw
    for name, column in read.items():
        if name == "features":  # the same features, each the same column (their order is the first event's)
            got, want = scanned[name], column
            assert {f.name for f in got.type} == {f.name for f in want.type}, raw
            for field in want.type:
                a, b = got.field(field.name), want.field(field.name)
                assert a.type == b.type and a.equals(b), (field.name, a, b, raw)
        else:
            assert scanned[name].type == column.type and scanned[name].equals(column), (name, raw)


def check(raw: bytes) -> dict[str, pa.Array] | None:
    """The scan's fields, compared with the reader's when it reads the body."""
    scanned = scan_events(raw)
    if scanned is not None:
        assert_same(scanned, arrow_fields(raw), raw)
    return scanned


def body(*events: dict[str, Any], **dumps: Any) -> bytes:
    return json.dumps({"events": list(events)}, **dumps).encode()


def event(i: int = 0, **fields: Any) -> dict[str, Any]:
    return {"id": f"e{i}", "ts": "2026-11-29T08:30:00.123456+00:00",
            "features": {"x": 1.5, "n": None, "c": "red"}, "prediction": 1, "latency_ms": 2.5} | fields


TAKEN = [
    body(*(event(i, features={"x": round(i * 0.37, 4), "n": i, "c": "red"}) for i in range(50))),
    body(event(0, prediction="yes", error="boom", version="v1"), event(1, prediction=None, error=None)),
    body(event(0, features={"x": 1, "n": 2.5, "c": None}), event(1, features={"x": 2.25, "n": -3, "c": "ü ✓ 😀"}),
         ensure_ascii=False),
    body(event(0, latency_ms=0), event(1, latency_ms=1e-300), event(2, latency_ms=1.7976931348623157e308)),
    body(event(0, features={"x": -0.0, "n": 123456789012345678, "c": ""}), event(1, features={"x": 0.1 + 0.2})),
    body(event(0, ts=None, scores=None), event(1), indent=2),
    body(event(0, features={"x": 5e-324, "n": 2.2250738585072014e-308, "c": "a"}),
         event(1, features={"x": 9007199254740993.0, "n": 1e22, "c": "b"}),
         event(2, features={"x": 1e23, "n": 123.456e-30, "c": "c"})),
    body({"id": "only", "features": {"x": 1}}, {"features": {"c": "d", "x": 2}, "id": "order"}),
    b' \n\t{ "events" :[ {"id":"a" ,"features":{ "x" : 1 ,"c":"r" } } , {"features":{},"id":"b"}]}\r\n',
    b'{"events": [{"id": "a", "features": {"x": 1E5, "n": 2e+3, "c": "r"}, "latency_ms": 0.5E-2}]}',
    # Escapes, as json.dumps writes them by default (every non-ASCII character; a surrogate pair past U+FFFF).
    body(event(0, id='quote"d', error="tab\there \\ \x01 / \b\f\r\n"), event(1, features={"x": 1, "c": "ü 😀 ✓"}),
         event(2, version="\x00", features={"x": 2, "c": "\u00e9\u0301"})),
    b'{"events": [{"id": "\\u00FC\\/\\uD83D\\uDE00", "features": {"x": 1, "c": "a\\u0000b"}}]}',
]


@pytest.mark.parametrize("raw", TAKEN)
def test_usual_bodies_are_scanned_as_arrows_reader_reads_them(raw: bytes) -> None:
    assert check(raw) is not None


LEFT = [
    body(event(0, prediction=True)),
    body(event(0, prediction=[1])),
    body(event(0, prediction={"k": 1})),
    body(event(0, scores={"0": 0.5, "1": 0.5})),  # classes are keys the scan does not read: the reader does
    b'{"events": [{"id": "a\x01", "features": {"x": 1}}]}',  # a control character: no JSON
    *(b'{"events": [{"id": "%s", "features": {"x": 1}}]}' % text for text in (
        b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"\\ud800x", b"\\x41", b"\\u12", b"\\u12G4", b"\\", b"\\'")),
    b'{"events": [{"id": "a", "features": {"\\u0078": 1}}]}',  # an escaped key
    b'{"events": [{"id": "a", "id": "b", "features": {"x": 1}}]}',
    b'{"events": [{"id": "a", "features": {"x": 1, "x": 2}}]}',
    b'{"events": [{"id": "a", "features": {"x": 1}, "other": 1}]}',
    b'{"events": [{"id": "a", "features": {"x": 1}}], "more": 1}',
    b'{"events": [{"id": "a", "features": {"x": 1}}]} x',
    b'{"events": [{"id": "a", "features": {"x": 1}}]}{"events": []}',
    b'{"events": []}',
    b'{"events": [{"features": {"x": 1}}]}',
    b'{"events": [{"id": "a"}]}',
    b'{"events": [{"id": "a", "features": 1}]}',
    b'{"events": [{"id": "a", "features": {}}]}',  # no feature anywhere: the reader says what that is
    b'{"events": [{"id": "a", "features": {"x": 1}},]}',
    b'{"events": [{"id": "a", "features": {"x": 1,}}]}',
    b'{"events": [{"id": "a", "features": {"x": "1"}}, {"id": "b", "features": {"x": 1}}]}',  # text and numbers
    b'{"events": [{"id": "a", "ts": 1700000000, "features": {"x": 1}}]}',
    b'{"Events": [{"id": "a", "features": {"x": 1}}]}',
    b'{"events": {"id": "a", "features": {"x": 1}}}',
    b'{"events": [{"id": "a", "features": {"\xff": 1}}]}',  # a name that is no UTF-8
    b'{"events": [{"id": "\xc3(", "features": {"x": 1}}]}',
    b'{"events": [{"id": "a", "features": {"x": 1}}',
    *(b'{"events": [{"id": "a", "features": {"x": %s}}]}' % number for number in (
        b"01", b"1.", b".5", b"+1", b"-", b"1e", b"1e+", b"--1", b"0x10", b"NaN", b"Infinity", b"-Infinity",
        b"1234567890123456789", b"nul", b"null1", b"tru", b"0e309", b"1" + b"0" * 310 + b".5")),
    body(event(0, features={f"f{k}": k for k in range(MAX_FEATURES + 1)})),
    body(*({"id": f"e{i}", "features": {"x": i}} for i in range(MAX_BATCH + 1))),
]


@pytest.mark.parametrize("raw", LEFT)
def test_other_bodies_are_left_to_arrows_reader(raw: bytes) -> None:
    assert scan_events(raw) is None


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1e-400", b"123456789012345678901234567890.5"])
def test_numbers_the_scan_leaves_to_arrows_conversion(number: bytes) -> None:
    """Out of the exact range: Arrow's conversion of their text decides, or the reader reads the body."""
    check(b'{"events": [{"id": "a", "features": {"x": %s}}]}' % number)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(odd_events(), min_size=1, max_size=4), st.booleans())
def test_any_body_is_scanned_as_the_reader_reads_it_or_left_to_it(items: list[dict[str, Any]],
                                                                  ascii_only: bool) -> None:
    """The bodies test_event_columns generates (valid and odd values of every field)."""
    try:
        raw = json.dumps({"events": items}, ensure_ascii=ascii_only).encode()
    except UnicodeEncodeError:
        return
    hypothesis.event("scanned" if check(raw) is not None else "left to the reader")


_DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=25)
_SPELLED = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),  # Python's shortest spelling: up to 17 digits
    st.integers(-(2**62), 2**62).map(str),
    st.builds(lambda sign, whole, point, e: f"{sign}{whole.lstrip('0') or '0'}{point}{e}",
              st.sampled_from(["", "-"]), _DIGITS, st.one_of(st.just(""), _DIGITS.map(lambda d: f".{d}")),
              st.one_of(st.just(""), st.builds(lambda e, s, d: f"{e}{s}{d}", st.sampled_from("eE"),
                                               st.sampled_from(["", "+", "-"]), st.integers(0, 330).map(str)))))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_SPELLED, _SPELLED), min_size=1, max_size=6))
def test_numbers_are_converted_exactly_as_the_reader_converts_them(numbers: list[tuple[str, str]]) -> None:
    """Decimals and integers of every length and exponent, as a feature and as a latency; where the exact
    conversion does not apply, Arrow's conversion of the text."""
    raw = ('{"events": [' + ", ".join(
        f'{{"id": "e{i}", "features": {{"x": {x}}}, "latency_ms": {latency}}}'
        for i, (x, latency) in enumerate(numbers)) + "]}").encode()
    scanned = check(raw)
    hypothesis.event("scanned" if scanned is not None else "left to the reader")
    spellings = [n for pair in numbers for n in pair]
    if all(len(n.lstrip("-").replace(".", "").split("e")[0].split("E")[0].lstrip("0")) <= 15 and "e" not in n.lower()
           and abs(float(n)) < 1e15 for n in spellings):
        assert scanned is not None, raw  # short decimals, the usual kind, are always taken


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.text(max_size=6), st.text(max_size=4)), min_size=1, max_size=5), st.booleans(),
       st.lists(st.sampled_from(["\\ud83d\\ude00", "\\ud800", "\\udfff", "\\u00e9", "\\/", "\\u0000",
                                 "\\uD83D\\uDE00"]), max_size=2))
def test_text_is_decoded_as_the_reader_decodes_it(texts: list[tuple[str, str]], ascii_only: bool,
                                                  spelled: list[str]) -> None:
    """Any text, written raw or escaped as json.dumps writes it, and escapes json.dumps never writes (lone
    surrogates, upper-case hex, an escaped slash): the scan decodes each as the reader does, or leaves the body."""
    items = [{"id": i or "-", "features": {"x": n, "c": c}, "error": c} for n, (i, c) in enumerate(texts)]
    raw = json.dumps({"events": items}, ensure_ascii=ascii_only).encode()
    for escape in spelled:  # an error value spelled with an escape of our own
        raw = raw.replace(b'"error": "', f'"error": "{escape}'.encode(), 1)
    scanned = check(raw)
    hypothesis.event("scanned" if scanned is not None else "left to the reader")
    if scanned is not None and not spelled:
        assert scanned["id"].to_pylist() == [i or "-" for i, _ in texts]  # what the client meant


_WS = st.text(alphabet=" \t\n\r", max_size=2)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({"x": st.floats(-1e6, 1e6), "c": st.sampled_from(["a", "b", "ü"])},
                                      optional={"n": st.one_of(st.none(), st.integers(-5, 5))}), min_size=1,
                max_size=5), st.randoms(use_true_random=False), st.data())
def test_whitespace_and_member_order_change_nothing(features: list[dict[str, Any]], shuffle: random.Random,
                                                    data: st.DataObject) -> None:
    def spaced(value: Any) -> str:
        if isinstance(value, dict):
            members = list(value.items())
            shuffle.shuffle(members)
            return "{" + ",".join(f'{data.draw(_WS)}{json.dumps(k)}{data.draw(_WS)}:{data.draw(_WS)}{spaced(v)}'
                                  f'{data.draw(_WS)}' for k, v in members) + "}"
        if isinstance(value, list):
            return "[" + ",".join(f"{data.draw(_WS)}{spaced(v)}{data.draw(_WS)}" for v in value) + "]"
        return json.dumps(value, ensure_ascii=False)

    items = [{"id": f"e{i}", "features": f, "latency_ms": i} for i, f in enumerate(features)]
    raw = (data.draw(_WS) + spaced({"events": items}) + data.draw(_WS)).encode()
    scanned = check(raw)
    assert scanned is not None, raw
    assert scanned["id"].to_pylist() == [f"e{i}" for i in range(len(items))]


def test_the_api_reads_the_usual_batch_without_arrows_reader(mixed: str, client: TestClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def unused(raw: bytes) -> Any:
        raise AssertionError("Arrow's reader ran for the usual batch")

    batch = {"events": [{"id": f"a{i}", "ts": "2026-11-29T08:30:00Z", "features": {"f1": i / 3, "f2": None,
                                                                                     "color": "red"},
                         "prediction": 1, "latency_ms": 1.0} for i in range(30)]}
    monkeypatch.setattr(columns, "_read_fields", unused)
    response = client.post(f"/models/{mixed}/events", json=batch)
    assert response.status_code == 200 and response.json() == {"accepted": 30, "duplicates": 0}
    monkeypatch.undo()  # and a body the scan leaves goes to the reader, as before
    left = {"events": [{"id": "s0", "features": {"f1": 1, "color": "red"}, "scores": {"0": 0.3, "1": 0.7}}]}
    assert scan_events(json.dumps(left).encode()) is None
    assert client.post(f"/models/{mixed}/events", json=left).json() == {"accepted": 1, "duplicates": 0}


def test_the_scan_compiles_where_numba_can_cache_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only image and home leave numba no cache locator: the module still loads (compiled in-process)."""
    from numba.core import caching

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    try:
        with pytest.raises(RuntimeError, match="no locator"):  # what numba does without the fallback
            importlib.import_module("numba").njit(cache=True)(lambda x: x)
        reloaded = importlib.reload(json_scan)
        scanned = reloaded.scan_events(b'{"events": [{"id": "a", "features": {"x": 1.25}}]}')
        assert scanned is not None and scanned["features"].field("x").to_pylist() == [1.25]
    finally:
        monkeypatch.undo()
        importlib.reload(json_scan)
