"""The usual POST /events body read into Arrow columns by one compiled pass, in front of Arrow's JSON reader.

Arrow's reader infers a type for every value of every field: about 4 ns a byte, 6 ms for the 1.4 MB of 5,000
events of 11 features, the largest part of an ingest batch's time. Clients nearly always send one shape:
`{"events": [...]}` whose events hold text, numbers and nulls, and a flat object of features. This scan reads
only that shape, byte by byte in a loop numba compiles, and records where each value lies (text) or what it is
(numbers); the columns are then built whole. Text is cut out of the body as it is, or decoded where it holds an
escape (JSON's eight, and \\uXXXX with surrogate pairs: json.dumps escapes every non-ASCII character unless told not
to). Numbers are converted exactly: integers of up to 18 digits, and decimals whose digits fit 2**53 with a power
of ten up to 22 (one correctly rounded multiply or divide, as Clinger showed); any other number's text goes to
Arrow's own conversion.

Anything outside that shape gives None and the body goes to Arrow's reader as before: a nested value, true or
false, scores, a control character or an escape JSON lacks in a string, a lone surrogate, an escaped key, a
repeated key, an unknown field, text and numbers in one field, more than MAX_FEATURES features, a number RapidJSON
(Arrow's parser) would refuse or that converts past float64's range. What it returns for a body is what Arrow's
reader returns (tests/watchtower/test_json_scan.py compares the two on generated bodies).
"""

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from detectors.compiled import compiled
from watchtower.events.schemas import MAX_BATCH

# An event's fields, in the order of the scan's first rows; a feature's row is len(TOP) + its index.
TOP = ("id", "ts", "features", "prediction", "scores", "latency_ms", "error", "version")
_FEATURES, _SCORES = TOP.index("features"), TOP.index("scores")
MAX_FEATURES = 256
# What a cell holds.
ABSENT, NULL, TEXT, INT, FLOAT, HARD, OBJECT, ESCAPED = 0, 1, 2, 3, 4, 5, 6, 7
# HARD: a number Arrow converts from its text; ESCAPED: text holding escapes, decoded when its column is built.
_TOP_NAMES = np.frombuffer(b"".join(name.encode() for name in TOP), np.uint8)
_TOP_OFFSETS = np.cumsum([0, *(len(name) for name in TOP)]).astype(np.int64)
_POW10 = np.array([10.0**k for k in range(23)])  # exact in binary64 up to 10**22
_MAX_EXACT = 2**53
_compiled = compiled("the events body scan")


@_compiled
def _at(buf: Any, i: int) -> int:  # pragma: no cover (compiled)
    return int(buf[i]) if i < len(buf) else -1


@_compiled
def _ws(buf: Any, i: int) -> int:  # pragma: no cover (compiled)
    """The index of the next byte that is not JSON whitespace (space, tab, newline, carriage return)."""
    n = len(buf)
    while i < n and (buf[i] == 32 or buf[i] == 10 or buf[i] == 13 or buf[i] == 9):
        i += 1
    return i


@_compiled
def _string_end(buf: Any, i: int, escapes: bool) -> Any:  # pragma: no cover (compiled)
    """(The closing quote of a string whose text starts at i, whether it holds an escape); (-1, False) for a
    control character, no end, or an escape where `escapes` says none may be (a key)."""
    n, escaped = len(buf), False
    while i < n:
        b = buf[i]
        if b == 34:
            return i, escaped
        if b == 92:
            if not escapes:
                return -1, False
            escaped = True
            i += 2  # the escaped byte, a quote among them, ends nothing
            continue
        if b < 32:
            return -1, False
        i += 1
    return -1, False


@_compiled
def _same(buf: Any, start: int, end: int, names: Any, name_start: int, name_end: int) -> bool:  # pragma: no cover
    if end - start != name_end - name_start:
        return False
    for k in range(end - start):
        if buf[start + k] != names[name_start + k]:
            return False
    return True


@_compiled
def _top_row(buf: Any, start: int, end: int, names: Any, offsets: Any) -> int:  # pragma: no cover (compiled)
    for row in range(len(offsets) - 1):
        if _same(buf, start, end, names, offsets[row], offsets[row + 1]):
            return row
    return -1


@_compiled
def _scan(buf: Any, kinds: Any, starts: Any, ends: Any, ints: Any, floats: Any, spelled: Any, top_names: Any,
          top_offsets: Any, pow10: Any) -> Any:  # pragma: no cover (compiled)
    """(events, features) read into the cells, or (-1, 0) if the body is not of the shape read here.

    One loop over the members of the events and of their features objects: a call per value taking the arrays
    cost their reference counts, 80 ns a value. Every value writes all four of its cells (integers their value as
    a float too, for a column that turns out to hold decimals): a page the loop never wrote is one the kernel has
    not mapped yet, and a vector loop that reads the column later with lanes masked off still pays a microcode
    assist per access there (35-45 us a column on this machine's AVX-512 CPU)."""
    fail = (-1, 0)
    capacity, most = kinds.shape[1], kinds.shape[0] - len(top_offsets) + 1
    first = len(top_offsets) - 1  # the row of the first feature
    i = _ws(buf, 0)
    if _at(buf, i) != 123:
        return fail
    i = _ws(buf, i + 1)
    if _at(buf, i) != 34 or _string_end(buf, i + 1, False)[0] != i + 7:
        return fail
    for k, letter in enumerate((101, 118, 101, 110, 116, 115)):  # events
        if buf[i + 1 + k] != letter:
            return fail
    i = _ws(buf, i + 8)
    if _at(buf, i) != 58:
        return fail
    i = _ws(buf, i + 1)
    if _at(buf, i) != 91:
        return fail
    event, known = 0, 0
    while True:  # events
        i = _ws(buf, i + 1)
        if _at(buf, i) != 123 or event >= capacity:
            return fail
        i = _ws(buf, i + 1)
        inside, member = False, 0  # inside: among the event's features
        while True:  # members: "key": value
            if _at(buf, i) != 34:
                return fail
            key_end = _string_end(buf, i + 1, False)[0]
            if key_end < 0:
                return fail
            if inside:  # a feature's index: the one at this place in the object tried first
                row = -1
                if member < known and _same(buf, i + 1, key_end, buf, spelled[member, 0], spelled[member, 1]):
                    row = first + member
                else:
                    for index in range(known):
                        if _same(buf, i + 1, key_end, buf, spelled[index, 0], spelled[index, 1]):
                            row = first + index
                            break
                if row < 0:
                    if known == most:
                        return fail
                    spelled[known, 0], spelled[known, 1] = i + 1, key_end
                    row, known = first + known, known + 1
            else:
                row = _top_row(buf, i + 1, key_end, top_names, top_offsets)
                if row < 0:
                    return fail
            if kinds[row, event] != ABSENT:  # a key given twice
                return fail
            i = _ws(buf, key_end + 1)
            if _at(buf, i) != 58:
                return fail
            i = _ws(buf, i + 1)
            b = _at(buf, i)
            if not inside and row == _FEATURES:
                if b != 123:
                    return fail
                kinds[row, event] = OBJECT
                i = _ws(buf, i + 1)
                if _at(buf, i) != 125:
                    inside, member = True, 0
                    continue
            elif b == 34:  # text
                end, escaped = _string_end(buf, i + 1, True)
                if end < 0:
                    return fail
                kinds[row, event], starts[row, event], ends[row, event] = ESCAPED if escaped else TEXT, i + 1, end
                ints[row, event], floats[row, event] = 0, 0.0
                i = end
            elif b == 110:  # null
                if _at(buf, i + 1) != 117 or _at(buf, i + 2) != 108 or _at(buf, i + 3) != 108:
                    return fail
                kinds[row, event] = NULL
                starts[row, event], ends[row, event], ints[row, event], floats[row, event] = 0, 0, 0, 0.0
                i += 3
            elif b == 45 or 48 <= b <= 57:  # a number
                start = i
                negative = b == 45
                i += negative
                b = _at(buf, i)
                mantissa, digits, exact, point_digits, is_float = 0, 0, True, 0, False
                if b == 48:  # a leading 0 stands alone: a digit after it fails the separator check below
                    i += 1
                elif 49 <= b <= 57:
                    while 48 <= _at(buf, i) <= 57:
                        if i - start > 300:  # RapidJSON (Arrow's parser) refuses a whole part past float64's range
                            return fail
                        if digits < 18:
                            mantissa = mantissa * 10 + (buf[i] - 48)
                            digits += 1
                        else:
                            exact = False  # 19 digits or more: an integer is left to Arrow's reader
                        i += 1
                else:
                    return fail
                if _at(buf, i) == 46:  # .
                    is_float = True
                    i += 1
                    if not 48 <= _at(buf, i) <= 57:
                        return fail
                    while 48 <= _at(buf, i) <= 57:
                        if digits < 18:
                            if mantissa != 0 or buf[i] != 48:
                                digits += 1
                            mantissa = mantissa * 10 + (buf[i] - 48)
                            point_digits += 1
                        else:
                            exact = False
                        i += 1
                exponent = 0
                if _at(buf, i) == 101 or _at(buf, i) == 69:  # e E
                    is_float = True
                    i += 1
                    sign = 1
                    if _at(buf, i) == 43 or _at(buf, i) == 45:
                        sign = -1 if buf[i] == 45 else 1
                        i += 1
                    if not 48 <= _at(buf, i) <= 57:
                        return fail
                    while 48 <= _at(buf, i) <= 57:
                        exponent = min(exponent * 10 + (buf[i] - 48), 100_000)
                        i += 1
                    if sign > 0 and exponent > 308:  # RapidJSON refuses some of these whatever the digits
                        return fail
                    exponent *= sign
                if not is_float:
                    if not exact:
                        return fail
                    kinds[row, event], ints[row, event] = INT, -mantissa if negative else mantissa
                    floats[row, event] = float(ints[row, event])  # as a column of decimals holds it
                    starts[row, event], ends[row, event] = 0, 0
                else:
                    power = exponent - point_digits
                    if exact and (mantissa == 0 or mantissa <= _MAX_EXACT and -22 <= power <= 22):
                        value = float(mantissa)
                        if mantissa != 0:
                            value = value * pow10[power] if power >= 0 else value / pow10[-power]
                        kinds[row, event], floats[row, event] = FLOAT, -value if negative else value
                        starts[row, event], ends[row, event] = 0, 0
                    else:
                        kinds[row, event], starts[row, event], ends[row, event] = HARD, start, i
                        floats[row, event] = 0.0
                    ints[row, event] = 0
                i -= 1
            else:  # true, false, an object, an array
                return fail
            if row == _SCORES and kinds[row, event] != NULL:  # scores by class: Arrow's reader
                return fail
            # After the value (i at its last byte): the next member, or the end of the features, then of the event.
            while True:
                i = _ws(buf, i + 1)
                b = _at(buf, i)
                if b == 44:
                    i = _ws(buf, i + 1)
                    member += 1
                    break
                if b != 125:
                    return fail
                if not inside:
                    break
                inside = False
            if b == 125:
                break
        if kinds[0, event] == ABSENT or kinds[_FEATURES, event] == ABSENT:
            return fail
        event += 1
        i = _ws(buf, i + 1)
        if _at(buf, i) == 44:
            continue
        if _at(buf, i) != 93:
            return fail
        break
    i = _ws(buf, i + 1)
    if _at(buf, i) != 125 or _ws(buf, i + 1) != len(buf):
        return fail
    return event, known


@_compiled
def _count(buf: Any, byte: int) -> int:  # pragma: no cover (compiled)
    """How many times the byte occurs (bytes.count takes 13 times as long)."""
    found = 0
    for b in buf:
        found += b == byte
    return found


@_compiled
def _gather(buf: Any, kinds: Any, starts: Any, ends: Any, row: int, n: int, kind: int) -> Any:  # pragma: no cover
    """(offsets, bytes, ok) of a row's cells of one kind, empty where a cell holds another; for TEXT, the ESCAPED
    cells decoded too (ok is False for an escape JSON does not have or a lone surrogate)."""
    total = 0
    for k in range(n):
        if kinds[row, k] == kind or kind == TEXT and kinds[row, k] == ESCAPED:
            total += ends[row, k] - starts[row, k]  # decoded text is never longer than its escapes
    offsets = np.zeros(n + 1, np.int32)
    data = np.empty(total, np.uint8)
    at = 0
    for k in range(n):
        if kinds[row, k] == kind:
            start = starts[row, k]
            for j in range(ends[row, k] - start):
                data[at + j] = buf[start + j]
            at += ends[row, k] - start
        elif kind == TEXT and kinds[row, k] == ESCAPED:
            at = _unescape(buf, starts[row, k], ends[row, k], data, at)
            if at < 0:
                return offsets, data, False
        offsets[k + 1] = at
    return offsets, data[:at], True


@_compiled
def _unescape(buf: Any, i: int, end: int, out: Any, at: int) -> int:  # pragma: no cover (compiled)
    """JSON text buf[i:end] decoded into out from `at` (UTF-8); the position after it, or -1."""
    while i < end:
        b = buf[i]
        if b != 92:
            out[at] = b
            at, i = at + 1, i + 1
            continue
        escape = buf[i + 1] if i + 1 < end else 0
        i += 2
        if escape == 34 or escape == 92 or escape == 47:  # " \ /
            out[at] = escape
        elif escape == 98:  # b
            out[at] = 8
        elif escape == 102:  # f
            out[at] = 12
        elif escape == 110:  # n
            out[at] = 10
        elif escape == 114:  # r
            out[at] = 13
        elif escape == 116:  # t
            out[at] = 9
        elif escape == 117:  # u: four hex digits, a surrogate pair for a character past U+FFFF
            code = _hex4(buf, i, end)
            i += 4
            if 0xD800 <= code <= 0xDBFF:
                low = _hex4(buf, i + 2, end) if i + 1 < end and buf[i] == 92 and buf[i + 1] == 117 else -1
                if not 0xDC00 <= low <= 0xDFFF:
                    return -1
                code, i = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), i + 6
            elif code < 0 or 0xDC00 <= code <= 0xDFFF:
                return -1
            at = _utf8(code, out, at)
            continue
        else:
            return -1
        at += 1
    return at


@_compiled
def _hex4(buf: Any, i: int, end: int) -> int:  # pragma: no cover (compiled)
    """The number four hex digits at i spell, or -1."""
    if i + 4 > end:
        return -1
    code = 0
    for k in range(4):
        b = buf[i + k]
        digit = b - 48 if 48 <= b <= 57 else (b | 32) - 87 if 97 <= (b | 32) <= 102 else -1
        if digit < 0:
            return -1
        code = code * 16 + digit
    return code


@_compiled
def _utf8(code: int, out: Any, at: int) -> int:  # pragma: no cover (compiled)
    """A code point's UTF-8 bytes into out at `at`; the position after them."""
    if code < 0x80:
        out[at] = code
        return at + 1
    if code < 0x800:
        out[at], out[at + 1] = 0xC0 | code >> 6, 0x80 | code & 0x3F
        return at + 2
    if code < 0x10000:
        out[at], out[at + 1], out[at + 2] = 0xE0 | code >> 12, 0x80 | code >> 6 & 0x3F, 0x80 | code & 0x3F
        return at + 3
    out[at], out[at + 1] = 0xF0 | code >> 18, 0x80 | code >> 12 & 0x3F
    out[at + 2], out[at + 3] = 0x80 | code >> 6 & 0x3F, 0x80 | code & 0x3F
    return at + 4


def scan_events(raw: bytes) -> dict[str, pa.Array] | None:
    """The body's events as Arrow's reader gives them (one array per field present, "features" a struct, "ts"
    always, as text), or None if the body is not of the shape read here."""
    if len(raw) >= 2**31:
        return None
    buf = np.frombuffer(raw, np.uint8)
    # Each event opens two objects (itself and its features): a bound on how many there are, or the scan fails.
    capacity = min(_count(buf, 123) // 2, MAX_BATCH)
    if capacity < 1:
        return None
    rows = len(TOP) + MAX_FEATURES
    # Row-major by field: numpy's zeros are calloc's untouched pages, so the rows of absent features cost nothing.
    kinds = np.zeros((rows, capacity), np.int8)
    starts, ends = np.empty((rows, capacity), np.int32), np.empty((rows, capacity), np.int32)
    ints, floats = np.empty((rows, capacity), np.int64), np.empty((rows, capacity), np.float64)
    spelled = np.empty((MAX_FEATURES, 2), np.int64)
    n, known = _scan(buf, kinds, starts, ends, ints, floats, spelled, _TOP_NAMES, _TOP_OFFSETS, _POW10)
    if n < 1 or known == 0:  # an empty batch, or events without any feature: Arrow's reader says what they are
        return None
    cells = Cells(buf, n, kinds, starts, ends, ints, floats)
    try:
        names = [raw[s:e].decode() for s, e in spelled[:known]]
        fields: dict[str, pa.Array] = {}
        for row, name in enumerate(TOP):
            if name == "features" or name != "ts" and not kinds[row, :n].any():
                continue
            column = cells.column(row, text=name == "ts")
            if column is None:
                return None
            fields[name] = column
        children = [cells.column(row) for row in range(len(TOP), len(TOP) + known)]
    except (UnicodeDecodeError, pa.ArrowInvalid):  # a name or text that is no UTF-8, a number Arrow cannot read
        return None
    if any(child is None for child in children):
        return None
    fields["features"] = pa.StructArray.from_arrays(children, names=names)
    return fields


Array: TypeAlias = NDArray[Any]


@dataclass(frozen=True)
class Cells:
    """What the scan read: a row per field, a cell per event. Compiled helpers take the whole arrays and a row
    (numba takes a row's view 200 times as long as its array: 85 against 0.4 us)."""

    buf: Array
    n: int
    kinds: Array
    starts: Array
    ends: Array
    ints: Array
    floats: Array

    def column(self, row: int, text: bool = False) -> pa.Array | None:
        """A field's cells as Arrow's reader types them: text; int64 if every number is an integer, else float64;
        null-typed if all are null (text for `text`, as the reader's explicit schema has it). None: text and
        numbers mixed, which the reader refuses. Number columns are the scan's own memory (no copy)."""
        n, kinds = self.n, self.kinds[row, :self.n]
        counts = np.bincount(kinds, minlength=ESCAPED + 1)
        numbers, texts = int(counts[INT] + counts[FLOAT] + counts[HARD]), int(counts[TEXT] + counts[ESCAPED])
        if texts and numbers or text and numbers:
            return None
        missing = int(counts[ABSENT] + counts[NULL])
        if missing == n:
            return pa.nulls(n, pa.string() if text else pa.null())
        validity = pa.py_buffer(np.packbits(kinds >= TEXT, bitorder="little")) if missing else None
        if texts:
            column = self._text(row, TEXT, validity, missing)
            if column is not None:
                column.validate(full=True)  # UTF-8, as a JSON parser into text requires
            return column
        if counts[INT] == numbers:
            return pa.Array.from_buffers(pa.int64(), n, [validity, pa.py_buffer(self.ints[row, :n])], missing)
        if counts[HARD]:  # numbers the scan did not convert: Arrow converts their text
            hard = kinds == HARD
            spelled = self._text(row, HARD, None, 0)
            assert spelled is not None  # numbers hold no escapes
            converted = pc.cast(spelled.filter(pa.array(hard)), pa.float64()).to_numpy()
            if not np.isfinite(converted).all():  # past float64's range: the reader refuses such a body
                return None
            self.floats[row, :n][hard] = converted
        return pa.Array.from_buffers(pa.float64(), n, [validity, pa.py_buffer(self.floats[row, :n])], missing)

    def _text(self, row: int, kind: int, validity: pa.Buffer | None, missing: int) -> pa.StringArray | None:
        """The row's cells of `kind` as text (None: an escape that is no JSON's, a lone surrogate)."""
        offsets, data, ok = _gather(self.buf, self.kinds, self.starts, self.ends, row, self.n, kind)
        if not ok:
            return None
        return pa.StringArray.from_buffers(self.n, pa.py_buffer(offsets), pa.py_buffer(data), validity, missing)
