"""Check feature rows against a model's schema, all rows first, so a bad batch stores nothing."""

import math
from collections.abc import Sequence
from typing import Any

from watchtower.errors import Invalid, field_error

MAX_REPORTED = 50


def check_rows(rows: Sequence[dict[str, Any]], features: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Return the rows normalised (numbers as float, categories as str, NaN/missing as None).

    `where(i)` style prefix: errors name `<where>.<i>.<feature>`; raise Invalid listing them.
    """
    errors: list[dict[str, str]] = []
    known = {f["name"] for f in features}
    clean = []
    for i, row in enumerate(rows):
        out: dict[str, Any] = {}
        for name in row.keys() - known:
            errors.append(field_error(f"{where}.{i}.{name}", "unknown feature"))
        for feature in features:
            name, value = feature["name"], row.get(feature["name"])
            value, reason = _normalise(value, feature["type"], feature.get("nullable", False))
            if reason:
                errors.append(field_error(f"{where}.{i}.{name}", reason))
            out[name] = value
        clean.append(out)
        if len(errors) >= MAX_REPORTED:
            break
    if errors:
        raise Invalid(f"{len(errors)} invalid value(s); nothing was stored", errors=errors[:MAX_REPORTED])
    return clean


def _normalise(value: Any, kind: str, nullable: bool) -> tuple[Any, str | None]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, None if nullable else "missing or NaN, and the feature is not nullable"
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"expected a number, got {type(value).__name__}"
        if math.isinf(value):
            return None, "infinite values are not allowed"
        return float(value), None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value), None
    return None, f"expected a category (string), got {type(value).__name__}"
