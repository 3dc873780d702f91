"""Training-serving skew: the same ids' features differ between a pipeline stage and serving (feature_skew), or
serving spells a categorical differently from training (case, whitespace, a renamed category)."""

from typing import Any

from postmortems.diagnosis.evidence import Evidence, Suggestion
from postmortems.taxonomy import Tag

KEY = "skew"
MIN_RESPELLED_SHARE = 0.01  # of serving rows, so one stray value is not a skew


def explained(evidence: Evidence) -> set[str]:
    """Features whose move the skew explains (id-joined mismatches or a different spelling)."""
    joined = {f["feature"] for f in evidence.breached("skew")}
    return joined | {name for name, n in evidence.features.items() if _encoding(n)}


def _encoding(numbers: dict[str, Any]) -> list[str]:
    """What differs in the feature's encoding, as reason fragments."""
    if numbers.get("type") != "categorical":
        return []
    parts = [f"'{served}' for '{ref}'" for served, ref in (numbers.get("respelled") or {}).items()]
    parts += [f"'{new}' where the reference had '{old}'" for old, new in (numbers.get("renamed") or {}).items()]
    return parts if parts and numbers.get("unseen_share", 0.0) >= MIN_RESPELLED_SHARE else []


def suggest(evidence: Evidence) -> list[Suggestion]:
    """Id-joined mismatches first (the direct evidence), then encoding differences."""
    out = []
    rates = sorted(((f["score"], f) for f in evidence.breached("skew") if f["test"] == "mismatch_rate"),
                   key=lambda pair: -pair[0])
    if rates:
        rate, top = rates[0]
        joined = int(top.get("joined", 0))
        names = ", ".join(f["feature"] for _, f in rates[:4])
        reason = (f"{top['feature']}: {rate:.0%} of {joined} ids differ between the logged stage and serving "
                  f"(mismatch rate {rate:.2f} > {top['threshold']:g}); skewed: {names}")
        out.append(Suggestion(Tag.training_serving_skew.value, round(min(0.95, 0.7 + rate / 2), 2), reason, KEY))
    encodings = [(name, n, parts) for name, n in evidence.features.items() if (parts := _encoding(n))]
    if encodings:
        name, numbers, parts = max(encodings, key=lambda e: e[1]["unseen_share"])
        reason = (f"{name}: serving sends {'; '.join(parts[:3])} ({numbers['unseen_share']:.0%} of rows are "
                  "categories the reference never had)")
        confidence = round(min(0.9, 0.65 + numbers["unseen_share"]), 2)
        out.append(Suggestion(Tag.categorical_encoding_mismatch.value, confidence, reason, KEY))
    return out
