"""Check feature rows against a model's schema, all rows first, so a bad batch stores nothing."""

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from watchtower.errors import Invalid, field_error
from watchtower.limits import storable

MAX_REPORTED = 50


class SchemaMismatch(Invalid):
    """A batch refused for its schema; `counts` says how many events had each (kind, feature) problem."""

    def __init__(self, detail: str, errors: list[dict[str, str]], counts: Counter[tuple[str, str]]) -> None:
        super().__init__(detail, errors=errors)
        self.counts = counts


def check_rows(rows: Sequence[dict[str, Any]], features: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Return the rows normalised (numbers as float, categories as str, NaN/missing as None).

    `where` names a row, with `{i}` for its index (`body.events.{i}.features`); errors name
    `<where>.<feature>`, e.g. `body.events.3.features.f1`. Every row is checked so the counts of a refused
    batch are complete, and the first MAX_REPORTED errors are listed in the SchemaMismatch raised.
    """
    errors: list[dict[str, str]] = []
    counts: Counter[tuple[str, str]] = Counter()
    known = {f["name"] for f in features}
    clean = []
    for i, row in enumerate(rows):
        at = where.format(i=i)
        out: dict[str, Any] = {}
        for name in sorted(row.keys() - known):
            counts["extra", name] += 1
            errors.append(field_error(f"{at}.{name}", "unknown feature"))
        for feature in features:
            name, value = feature["name"], row.get(feature["name"])
            value, kind, reason = _normalise(value, feature["type"], feature.get("nullable", False))
            if kind:
                counts[kind, name] += 1
                errors.append(field_error(f"{at}.{name}", reason))
            out[name] = value
        clean.append(out)
    if errors:
        raise SchemaMismatch(f"{len(errors)} invalid value(s); nothing was stored", errors[:MAX_REPORTED], counts)
    return clean


def _normalise(value: Any, kind: str, nullable: bool) -> tuple[Any, str, str]:
    """(normalised value, problem kind or "", reason)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, *(("", "") if nullable else ("missing", "missing or NaN, and the feature is not nullable"))
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, "wrong_type", f"expected a number, got {type(value).__name__}"
        try:
            number = float(value)
        except OverflowError:  # a JSON integer of hundreds of digits
            return None, "wrong_type", "out of range for a 64-bit float"
        if math.isinf(number):
            return None, "wrong_type", "infinite values are not allowed"
        return number, "", ""
    if isinstance(value, str) and (unstorable := storable(value)):
        return None, "wrong_type", unstorable
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value), "", ""
    return None, "wrong_type", f"expected a category (string), got {type(value).__name__}"
