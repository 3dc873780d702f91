"""POST /events bodies read straight into Arrow columns, for the batches clients usually send.

pyarrow's JSON reader parses the body in C++ into one column per field, and whole-column checks stand in for
EventIn's (lengths, NUL, UTF-8, time format and range, finite non-negative latency, probabilities, 64-bit
predictions) and for check_columns' (known features, numbers, categories, nulls). A body they cannot vouch for
(another shape, a JSON type a column cannot tell apart, an unusual time format, anything invalid) gives None,
and the caller parses and checks it as before (batch.parse_events, validation.check_columns): every 422 keeps
its index, field and reason, and anything accepted here is stored exactly as that path stores it.
"""

import io
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from detectors.base import ERROR, ID, LATENCY, PREDICTION, PROBA_PREFIX, TS
from watchtower.events.batch import is_json
from watchtower.events.frames import RECEIVED_AT, TS_TYPE, VERSION, epoch_micros, prediction_column, received_column
from watchtower.events.json_scan import scan_events
from watchtower.events.schemas import MAX_BATCH
from watchtower.limits import EARLIEST, LATEST

FIELDS = {"id", "ts", "features", "prediction", "scores", "latency_ms", "error", "version"}
# The time formats read here (Arrow and pydantic read them alike); others, naive times among them, go the usual way.
_ISO = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
        r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$")
# Only `ts` is declared: inferred, a column of times would come back as timestamp[s] whatever their format.
_SCHEMA = pa.schema([("events", pa.list_(pa.struct([("ts", pa.string())])))])
_FLOATS, _TEXT, _INTS, _NULL = pa.float64(), pa.string(), pa.int64(), pa.null()
_MAX_DEPTH = 4  # {"events": [{"features": {...}}]}: deeper bodies (nested predictions) go the usual way
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'{}[]"\\')
SPLIT_BYTES = 256 * 1024  # a body this large is parsed in two halves at once (about 900 events of 11 features)
_BETWEEN_EVENTS = re.compile(rb"\}[ \t\n\r]*,[ \t\n\r]*\{")  # JSON's whitespace only (not \s: \f, \v)
_splitter: ThreadPoolExecutor | None = None
Columns = dict[str, pa.Array]


@dataclass(frozen=True)
class EventColumns:
    """A batch's events, one Arrow column per EventIn field present, with its times and scores checked."""

    fields: Columns
    times: pa.Array  # TS_TYPE, null where an event has no ts
    scores: Columns  # PROBA_<class> -> float64, null where an event has no scores

    def __len__(self) -> int:
        return len(self.fields["id"])


def read_events(raw: bytes, content_type: str | None) -> EventColumns | None:
    """The body's events if it is plainly a valid EventBatch, else None (then validate it the usual way)."""
    if not raw.startswith(b"{") or not is_json(content_type):
        return None
    # The usual shape in one compiled pass (whole: as two halves on two threads it took longer in a server, where
    # the halves' Python parts wait for each other's GIL); any other body as Arrow's reader reads it.
    fields = scan_events(raw)
    if fields is None:
        fields = _read_fields(raw)
    if fields is None or not ({"id", "features"} <= fields.keys() <= FIELDS and _valid(fields)):
        return None
    times, scores = _times(fields.get("ts")), _scores(fields.get("scores"))
    return None if times is None or scores is None else EventColumns(fields, times, scores)


def _read_fields(raw: bytes) -> Columns | None:
    """The body's events as Arrow's JSON reader reads them, one array per field, or None; a body nested deeper than
    an EventBatch is never given to the reader, which recurses."""
    return _arrow_fields(raw) if _shallow(raw) else None


def _arrow_fields(raw: bytes) -> Columns | None:
    try:
        events = _parsed(raw)
        if events is None:
            return None
        if not (pa.types.is_struct(events.type) and 1 <= len(events) <= MAX_BATCH and events.null_count == 0):
            return None
        events.validate(full=True)  # UTF-8 in every string, as a JSON parser into str requires
        return dict(zip([f.name for f in events.type], events.flatten(), strict=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):  # a key that is no UTF-8
        return None


def _parsed(raw: bytes) -> pa.Array | None:
    """The body's events array, or None if the body is not one object holding only it. A large body is parsed as
    two halves at once, on two cores (Arrow's parser releases the GIL), when both halves read alike; else whole."""
    halves = _halves(raw) if len(raw) >= SPLIT_BYTES else None
    if halves is not None:
        global _splitter
        if _splitter is None:
            _splitter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="json-half")
        first = _splitter.submit(_read_events_array, halves[0])
        second = _read_events_array(halves[1])
        first_events = first.result()
        if first_events is not None and second is not None and first_events.type == second.type:
            return pa.concat_arrays([first_events, second])
    return _read_events_array(raw)


def _halves(raw: bytes) -> tuple[bytes, bytes] | None:
    """The body cut between two events near its middle, each half an EventBatch body of its own. The cut is at
    a "}, {" outside strings (after an even number of quotes: a _shallow body's strings hold no escaped quote):
    the only array a _shallow body has is the events, so objects follow one another only there. (Were a cut
    inside a string, the first half would end in a string never closed, fail to parse, and the body be parsed
    whole.)"""
    cut, quotes, counted = _BETWEEN_EVENTS.search(raw, len(raw) // 2), 0, 0
    for _ in range(8):  # the pattern inside a string (after an odd number of quotes): try the next one
        if cut is None:
            return None
        quotes, counted = quotes + raw.count(b'"', counted, cut.start()), cut.start()
        if quotes % 2 == 0:
            return raw[:cut.start() + 1] + b"]}", b'{"events": [' + raw[cut.end() - 1:]
        cut = _BETWEEN_EVENTS.search(raw, cut.end())
    return None


def _read_events_array(raw: bytes) -> pa.Array | None:
    """Arrow's parse of an EventBatch body: its events (a list's values), or None if it is not {"events": [...]}."""
    try:
        table = pj.read_json(io.BytesIO(raw), read_options=pj.ReadOptions(use_threads=False, block_size=len(raw) + 1),
                             parse_options=pj.ParseOptions(explicit_schema=_SCHEMA))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != 1 or table.column_names != ["events"] or table.column(0).null_count:
        return None
    return table.column(0).combine_chunks().flatten()


def _shallow(raw: bytes) -> bool:
    """Whether the body nests at most _MAX_DEPTH deep, with one array (the events): Arrow's parser recurses, so a
    deeply nested body must never reach it. Only brackets, quotes and backslashes are looked at (a fifth of the
    bytes); a bracket after an odd number of quotes is inside a string, so a body with an escaped quote goes the
    usual way."""
    kept = raw.translate(None, _NOT_STRUCTURE)
    if b"\\" in kept and b'\\"' in raw:
        return False
    marks = np.frombuffer(kept, dtype=np.uint8)
    quotes = marks == ord('"')
    outside = np.cumsum(quotes, dtype=np.int32) % 2 == 0  # a closing quote counts as outside: it is no bracket
    brackets = marks[outside & ~quotes & (marks != ord("\\"))]
    if int(np.count_nonzero(brackets == ord("["))) != 1:
        return False
    steps = np.where((brackets | 0x20) == ord("{"), 1, -1).astype(np.int8)  # [ and { open, ] and } close
    return int(np.cumsum(steps, dtype=np.int32).max()) <= _MAX_DEPTH


def _valid(fields: Columns) -> bool:
    """EventIn's checks but those of ts and scores, on whole columns."""
    ids, features = fields["id"], fields["features"]
    return (ids.type == _TEXT and not ids.null_count and _text_ok(ids, 200) and pc.min(pc.utf8_length(ids)).as_py() >= 1
            and pa.types.is_struct(features.type) and not features.null_count
            and _optional_text(fields.get("error"), 2000) and _optional_text(fields.get("version"), 100)
            and _latency_ok(fields.get("latency_ms")) and _prediction_ok(fields.get("prediction")))


def _text_ok(column: pa.Array, max_length: int | None = None) -> bool:
    """A string column's values have no NUL and at most `max_length` characters (nulls pass)."""
    if len(column) == column.null_count:
        return True
    return bool((max_length is None or pc.max(pc.utf8_length(column)).as_py() <= max_length)
                and not pc.any(pc.match_substring(column, "\x00")).as_py())


def _optional_text(column: pa.Array | None, max_length: int) -> bool:
    return column is None or column.type == _NULL or (column.type == _TEXT and _text_ok(column, max_length))


def _finite(column: pa.Array) -> bool:
    return column.type != _FLOATS or not pc.any(pc.invert(pc.is_finite(column))).as_py()


def _latency_ok(column: pa.Array | None) -> bool:
    if column is None or column.type == _NULL:
        return True
    return column.type in (_INTS, _FLOATS) and _finite(column) and (
        len(column) == column.null_count or pc.min(column).as_py() >= 0)


def _prediction_ok(column: pa.Array | None) -> bool:
    """JsonValue's checks on a column of scalars: 64-bit integers (a float at or past 2**63 may have been an
    integer written without a point), finite floats, text without NUL."""
    if column is None or column.type in (_NULL, _INTS):
        return True
    if column.type == _TEXT:
        return _text_ok(column)
    return column.type == _FLOATS and _finite(column) and (
        len(column) == column.null_count or pc.max(pc.abs(column)).as_py() < 2.0**63)


def _times(text: pa.Array | None) -> pa.Array | None:
    """The events' times (null where absent) as TS_TYPE, or None if one is not plainly a time in range."""
    if text is None or text.null_count == len(text):
        return pa.nulls(0 if text is None else len(text), TS_TYPE)
    if not pc.all(pc.match_substring_regex(text, _ISO)).as_py():
        return None
    try:
        times = text.cast(TS_TYPE)
    except pa.ArrowInvalid:  # a day the month lacks
        return None
    micros = times.cast(_INTS)
    if pc.min(micros).as_py() < epoch_micros(EARLIEST) or pc.max(micros).as_py() >= epoch_micros(LATEST):
        return None
    return times


def _scores(scores: pa.Array | None) -> Columns | None:
    """PROBA_<class> columns (sorted by class), or None if a score is not a probability, a class name is too
    long, or events give different classes (in a column, an absent class and a null one look alike)."""
    if scores is None or scores.type == _NULL:
        return {}
    if not pa.types.is_struct(scores.type):
        return None
    given = pc.is_valid(scores)
    columns: Columns = {}
    for field, values in zip(scores.type, scores.flatten(), strict=True):
        if (values.type not in (_INTS, _FLOATS) or len(field.name) > 200 or "\x00" in field.name
                or pc.any(pc.and_(given, pc.is_null(values))).as_py()):
            return None
        values = values.cast(_FLOATS, safe=False)  # int64 rounds as float() does
        if not _finite(values) or pc.any(pc.or_(pc.less(values, 0), pc.greater(values, 1))).as_py():
            return None
        columns[f"{PROBA_PREFIX}{field.name}"] = values
    return dict(sorted(columns.items()))


def event_columns(events: EventColumns, features: Sequence[dict[str, Any]], task: str,
                  received_at: datetime) -> pa.Table | None:
    """The events as frames.event_table builds them, or None if a feature value is not plainly valid for the
    model (check_columns then names the problem, or takes the value as it always did)."""
    checked = _features(events.fields["features"], features)
    if checked is None:
        return None
    n, fields = len(events), events.fields
    columns: Columns = dict(checked)
    columns[ID] = fields["id"]
    times = events.times if len(events.times) else pa.nulls(n, TS_TYPE)
    columns[TS] = times.fill_null(pa.scalar(received_at, TS_TYPE)) if times.null_count else times
    columns[PREDICTION] = _predictions(fields.get("prediction", pa.nulls(n)), task)
    columns[LATENCY] = fields.get("latency_ms", pa.nulls(n)).cast(_FLOATS, safe=False)
    columns[ERROR] = fields.get("error", pa.nulls(n)).cast(_TEXT)
    columns.update(events.scores)
    columns[VERSION] = fields.get("version", pa.nulls(n)).cast(_TEXT)
    columns[RECEIVED_AT] = received_column(n, received_at)
    return pa.table(columns)


def _predictions(column: pa.Array, task: str) -> pa.Array:
    """As prediction_column types them: integers and text spelled by Arrow (as str() spells them), others by it.
    (Classes given as integers beside nulls go through it: it reads them as floats, as pandas holds them.)"""
    kind = _TEXT if task == "classification" else _FLOATS
    if column.type in ((_INTS, _FLOATS) if kind == _FLOATS else (_TEXT,)) or (
            column.type == _INTS and not column.null_count):
        return column.cast(kind, safe=False)
    return pa.array(prediction_column(column.to_numpy(zero_copy_only=False), task).to_numpy(), kind, from_pandas=True)


def _features(given: pa.StructArray, features: Sequence[dict[str, Any]]) -> Columns | None:
    """One column per model feature (float64 numeric, string categorical), or None if a value is not plainly
    valid: an unknown feature, a null the feature does not allow, NaN, a number for a category..."""
    try:
        sent = dict(zip([f.name for f in given.type], given.flatten(), strict=True))
    except UnicodeDecodeError:  # a feature name that is no UTF-8
        return None
    if not sent.keys() <= {f["name"] for f in features}:
        return None
    columns: Columns = {}
    for feature in features:
        name, numeric = feature["name"], feature["type"] == "numeric"
        column = sent.get(name, pa.nulls(len(given)))
        if column.null_count and not feature.get("nullable", False):
            return None
        if not (column.type in (_INTS, _FLOATS, _NULL) and _finite(column) if numeric
                else column.type in (_TEXT, _NULL) and _text_ok(column)):
            return None
        columns[name] = column.cast(_FLOATS if numeric else _TEXT, safe=False)  # int64 rounds as float() does
    return columns
