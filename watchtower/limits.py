"""Bounded input types: every string, number and datetime the API accepts can be stored the same way on
SQLite and PostgreSQL, and computed with, so bad input is a 422 naming the field instead of a 500.

PostgreSQL refuses NUL characters in text and JSON keys; its INTEGER and BIGINT columns (and SQLite's driver)
refuse larger integers; JSON columns cannot hold NaN or Infinity; pandas and timezone arithmetic break on
datetimes near year 1 or 9999. Use these instead of bare `str`, `int`, `float`, `datetime` and `Any`.
"""

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from annotated_types import Ge, Le
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

INT32_MAX = 2**31 - 1  # SQLModel's `int` columns (ids, counts) are INTEGER on PostgreSQL
INT64_MAX = 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive; well inside pandas' nanosecond range (up to 2262)
MAX_JSON_DEPTH = 32


def storable(value: str) -> str | None:
    """Why a string cannot be stored in a text or JSON column on both databases, or None if it can."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    try:
        value.encode()
    except UnicodeEncodeError:  # JSON may escape half a surrogate pair; no database can store it
        return "must be valid Unicode (no lone surrogates)"
    return None


def _storable(value: str) -> None:
    if reason := storable(value):
        raise ValueError(reason)


def explain(error: Mapping[str, Any]) -> str:
    """A pydantic error's message, saying what the NUL pattern means instead of quoting it."""
    if error.get("type") == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NO_NUL:
        return "must not contain NUL (\\u0000) characters"
    return str(error["msg"])


def _utc_in_range(value: datetime) -> datetime:
    reason = f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)"
    try:  # converting a time near year 1 or 9999 to UTC can leave the calendar
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(reason) from None
    if not EARLIEST <= value < LATEST:
        raise ValueError(reason)
    return value


def _clamped(value: datetime) -> datetime:
    try:
        return _utc_in_range(value)
    except ValueError:  # outside the range, or too near year 1 or 9999 to convert: the nearer end
        return EARLIEST if value.year < (EARLIEST.year + LATEST.year) // 2 else LATEST


def _day_in_range(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


def _reject_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null; leave the field out to keep its value")
    return value


def _bounded_json(value: Any, depth: int = 0) -> Any:
    """Any JSON value whose numbers, strings and nesting fit a JSON column on both databases."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError("integers must fit in 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    if isinstance(value, str):
        _storable(value)
    elif isinstance(value, list):
        for item in value:
            _bounded_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(str(key))
            _bounded_json(item, depth + 1)
    return value


NO_NUL = r"^[^\x00]*$"
SafeStr = Annotated[str, StringConstraints(pattern=NO_NUL)]
"""A string without NUL characters; give it a max_length matching its column. A pattern rather than a validator
keeps pydantic's own length messages, and documents the rule in the OpenAPI schema. (Lone surrogates, which no
database stores either, pydantic refuses in every `str`.)"""
ShortText = Annotated[SafeStr, Field(max_length=200)]
"""Names, authors, ids: fits the VARCHAR(200) columns that hold them."""
LongText = Annotated[SafeStr, Field(max_length=100_000)]
"""Summaries, impact, descriptions and timeline text (TEXT columns)."""
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A float that is neither NaN nor ±Infinity (JSON columns and responses cannot carry them)."""
Id = Annotated[int, Ge(1), Le(INT32_MAX)]
"""A row id (INTEGER primary keys): anything else cannot name a row, so it is a 422, never a database error.
Other integers that are stored get `le=INT32_MAX` (counts, seconds, revisions) next to their own bounds."""
UtcDatetime = Annotated[datetime, AfterValidator(_utc_in_range)]
"""An aware UTC datetime (naive input is taken as UTC) from 1970 to before 2200."""
DatetimeBound = Annotated[datetime, AfterValidator(_clamped)]
"""A filter bound (`opened_from`): stores nothing, so one outside the stored range is moved to its nearer end."""
Day = Annotated[date, AfterValidator(_day_in_range)]
"""A calendar date from 1970 to before 2200."""
JsonValue = Annotated[Any, AfterValidator(_bounded_json)]
"""Any JSON value with finite numbers, 64-bit integers, strings without NUL and at most 32 levels of nesting."""


def _drop_null(schema: dict[str, Any]) -> None:
    """The field's JSON schema without its `null` option: clients learn that null is refused."""
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    schema.pop("default", None)


T = TypeVar("T")
Patchable = Annotated[T | None, BeforeValidator(_reject_null), Field(json_schema_extra=_drop_null)]
"""A PATCH field that cannot be emptied: left out (None) keeps the stored value; an explicit null is a 422."""
