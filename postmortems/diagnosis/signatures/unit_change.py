"""Unit or definition change: a moved numeric feature that matches its reference under a simple affine map."""

import math

from postmortems.diagnosis.evidence import Evidence, Suggestion, p_text
from postmortems.taxonomy import Tag

KEY = "unit_change"
MIN_P_AFTER = 0.01  # the mapped values must be a plausible sample of the reference
MIN_GAIN = 1000.0  # and fit far better than the unmapped ones


def explained(evidence: Evidence) -> set[str]:
    """Features whose move a unit map explains."""
    return {name for name, n in evidence.features.items() if _fits(n)}


def _fits(numbers: dict[str, object]) -> bool:
    unit = numbers.get("unit")
    if not isinstance(unit, dict):
        return False
    before, after = float(numbers.get("p", 1.0)), float(unit["p_after"])  # type: ignore[arg-type]
    return after >= MIN_P_AFTER and after >= MIN_GAIN * before


def suggest(evidence: Evidence) -> list[Suggestion]:
    """One suggestion naming every feature a map explains, sure in proportion to how well the best one fits."""
    fits = sorted((n["unit"]["p_after"], name, n) for name, n in evidence.features.items() if _fits(n))
    if not fits:
        return []
    best, name, numbers = fits[-1]
    gain = math.log10(best / max(float(numbers["p"]), 1e-300))  # orders of magnitude the map gained
    reason = (f"{name} looks like the reference {numbers['unit']['map']}: KS p {p_text(best)} after the map "
              f"({p_text(numbers['p'])} before)")
    others = [n for _, n, _ in fits[:-1]]
    if others:
        reason += f"; also {', '.join(others)}"
    return [Suggestion(Tag.unit_change.value, round(0.75 + 0.2 * min(1.0, gain / 50), 2), reason, KEY)]
