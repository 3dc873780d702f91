"""A few rows into one table with one statement on the driver's own cursor: what the event writer's flushes use
for idempotency keys and audit rows instead of SQLAlchemy's statement execution.

On PostgreSQL the rows travel as one JSON parameter that `json_array_elements` unpacks in the server. Bound one
value at a time, psycopg adapts each parameter in C called from Python while holding the GIL: 2 ms of CPU for
75 audit rows and 0.7 ms for 75 keys, during which a request on the event loop waits (a 1-client async predict
benchmark's p99 grew with the flush's size). `json.dumps` of the same rows costs 0.3 ms; the server's own cost
is about the same either way. SQLite binds values in C without Python calls, so it keeps plain VALUES.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

# What a JSON value is cast to, by the kind a caller names (the table's own types apply on insert).
_PG_TYPES = {"text": "text", "time": "timestamptz", "int": "bigint"}


def insert_rows(cursor: Any, table: str, columns: dict[str, str], rows: Sequence[Sequence[Any]], postgres: bool,
                conflict: str = "", returning: str | None = None) -> list[Any]:
    """INSERT the rows (values in `columns`' order; kinds text, time, int or json) and return the `returning`
    column of the rows inserted. `conflict` is an ON CONFLICT clause; `json` values are Python objects."""
    if not rows:
        return []
    names = ", ".join(columns)
    kinds = list(columns.values())
    tail = f"{conflict}{f' RETURNING {returning}' if returning else ''}"
    if postgres:
        # Each row a JSON array, read by position: ->> gives text (NULL for null), cast to the column's kind.
        picked = ", ".join(f"r -> {i}" if k == "json" else f"(r ->> {i})::{_PG_TYPES[k]}" for i, k in enumerate(kinds))
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {picked} FROM json_array_elements(%s::json) AS r "
                       f"WHERE true {tail}", [_json_rows(rows, kinds)])
    else:
        marks = f"({', '.join(['?'] * len(columns))})"
        cursor.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([marks] * len(rows))} {tail}",
                       [_sqlite_value(v, k) for row in rows for v, k in zip(row, kinds, strict=True)])
    return [row[0] for row in cursor.fetchall()] if returning else []


def _json_rows(rows: Sequence[Sequence[Any]], kinds: list[str]) -> str:
    """The rows as one JSON array of arrays, times in ISO 8601 with their offset (each distinct time spelled
    once: a flush's rows share a few)."""
    times = [i for i, kind in enumerate(kinds) if kind == "time"]
    spelled: dict[datetime, str] = {}

    def spell(value: datetime | None) -> str | None:
        if value is None:
            return None
        text = spelled.get(value)
        if text is None:
            text = spelled[value] = _aware(value).isoformat()
        return text

    if not times:
        return json.dumps(rows, ensure_ascii=False)
    listed = [list(row) for row in rows]
    for row in listed:
        for i in times:
            row[i] = spell(row[i])
    return json.dumps(listed, ensure_ascii=False)


def _sqlite_value(value: Any, kind: str) -> Any:
    """A value as SQLAlchemy stores it in SQLite: JSON as its text, times as naive UTC text with microseconds."""
    if kind == "json":
        return json.dumps(value)
    if kind == "time" and value is not None:
        return time_text(_aware(value))
    return value


def _aware(value: datetime) -> datetime:
    """The time itself; a naive one is refused on both databases, as the ORM's aware DateTime columns refuse it."""
    if value.utcoffset() is None:
        raise ValueError(f"a naive time cannot be stored: {value!r}")
    return value


def time_text(value: datetime) -> str:
    """SQLite's spelling of a time, as SQLAlchemy's DATETIME stores it: naive UTC, microseconds always spelled."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")
