"""Check feature rows against a model's schema, all rows first, so a bad batch stores nothing."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from watchtower.errors import Invalid, field_error
from watchtower.limits import storable

if TYPE_CHECKING:  # numpy loads with the first batch or predict, not with the app
    import numpy as np

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


def check_columns(rows: Sequence[dict[str, Any]], features: list[dict[str, Any]],
                  where: str) -> dict[str, np.ndarray]:
    """check_rows, returning one column per feature (float64 numeric with NaN for null, object str/None
    categorical), checked a whole column at a time. A batch the column checks cannot pass as it stands goes
    through check_rows, which raises the same errors it always did (or passes it, if only slower)."""
    import numpy as np

    values = _feature_values(rows, [f["name"] for f in features])
    if values is not None and all(f["type"] == "numeric" for f in features):
        matrix = _numeric_matrix(values)
        if matrix is not None:
            return {f["name"]: row for f, row in zip(features, matrix, strict=True)}
    if values is not None:
        columns: dict[str, np.ndarray] = {}
        for feature, column in zip(features, values, strict=True):
            checked = (_numeric_column if feature["type"] == "numeric" else _category_column)(
                column, feature.get("nullable", False))
            if checked is None:
                break
            columns[feature["name"]] = checked
        else:
            return columns
    clean = check_rows(rows, features, where)
    return {f["name"]: (np.array([r[f["name"]] for r in clean], dtype=float) if f["type"] == "numeric"
                        else np.array([r[f["name"]] for r in clean], dtype=object)) for f in features}


def _feature_values(rows: Sequence[dict[str, Any]], names: list[str]) -> list[Sequence[Any]] | None:
    """Each feature's values (None where a row lacks it), or None if a row has a feature the model lacks."""
    if len(names) > 1 and set(map(len, rows)) == {len(names)}:  # the common case: every row has every feature
        try:
            return list(zip(*map(itemgetter(*names), rows), strict=True))
        except KeyError:  # as many keys as features, so an unknown one among them
            return None
    known = set(names)
    if any(row.keys() - known for row in rows):
        return None
    return [[row.get(name) for row in rows] for name in names]


def _numeric_matrix(values: list[Sequence[Any]]) -> np.ndarray | None:
    """All-numeric features whose values are all finite numbers as one [features, rows] float64 array, checked
    in one pass (a predict of one row would otherwise pay numpy's per-call cost once per feature); None when
    any value is not, and then the per-column checks decide, nullable features included."""
    import numpy as np

    if set(map(type, chain.from_iterable(values))) - {float, int}:  # exact types: bool is refused
        return None
    try:
        matrix = np.array(values, dtype=float)
    except OverflowError:  # a JSON integer of hundreds of digits
        return None
    return matrix if bool(np.isfinite(matrix).all()) else None


def _numeric_column(values: Sequence[Any], nullable: bool) -> np.ndarray | None:
    """The values as float64 if each is a finite number (or a null the feature allows), else None."""
    import numpy as np

    kinds = set(map(type, values))  # exact types: bool, a subclass of int, is refused
    if not kinds <= ({float, int, type(None)} if nullable else {float, int}):
        return None
    try:
        column = np.array(values, dtype=float)
    except OverflowError:  # a JSON integer of hundreds of digits
        return None
    if np.isinf(column).any() or (not nullable and np.isnan(column).any()):
        return None
    return column


def _category_column(values: Sequence[Any], nullable: bool) -> np.ndarray | None:
    """The values as an object column of str/None if each is a storable string (or an allowed null)."""
    import numpy as np

    kinds = set(map(type, values))
    if not kinds <= ({str, type(None)} if nullable else {str}):
        return None
    # Joined, the strings hold a NUL or a lone surrogate exactly when one of them does.
    if storable("".join(v for v in values if v is not None)) is not None:
        return None
    return np.array(values, dtype=object)


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
