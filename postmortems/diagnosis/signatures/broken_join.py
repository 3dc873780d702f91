"""Broken join or dead upstream: a feature turns missing, constant or defaulted (0, -1, "") for most rows while the
reference rarely was; requests refused because a feature is missing; fewer events than usual."""

from typing import Any

from postmortems.diagnosis.evidence import Evidence, Suggestion
from postmortems.taxonomy import Tag

KEY = "broken_join"
MOST = 0.5  # share of the window's rows
RARE = 0.1  # share of the reference's rows
DEFAULTS = (0.0, -1.0, "")
VOLUME_DROP = 0.5  # fewer than half the usual events


def broken(numbers: dict[str, Any]) -> str | None:
    """Why the feature looks cut off from its source, or None."""
    if numbers.get("missing", 0.0) >= MOST and numbers.get("reference_missing", 0.0) < RARE:
        return f"missing in {numbers['missing']:.0%} of rows ({numbers['reference_missing']:.0%} in the reference)"
    top, share, before = numbers.get("top"), numbers.get("top_share", 0.0), numbers.get("reference_top_share", 1.0)
    if top is None or share < MOST or before >= RARE:
        return None
    what = f"defaulted to {top!r}" if top in DEFAULTS else f"constant at {top!r}"
    return f"{what} in {share:.0%} of rows ({before:.1%} in the reference)"


def explained(evidence: Evidence) -> set[str]:
    """Features cut off from their source."""
    return {name for name, n in evidence.features.items() if broken(n)}


def suggest(evidence: Evidence) -> list[Suggestion]:
    """Broken features and refusals point at the join; a volume drop alone at the pipeline feeding serving."""
    out = []
    features = evidence.features
    cut = {name: why for name, n in features.items() if (why := broken(n))}
    refused = _refused(evidence)
    if cut or refused:
        parts = [f"{name} {why}" for name, why in sorted(cut.items())[:3]] + refused
        healthy = len(features) - len(cut)
        if features and healthy > 0:
            parts.append(f"{healthy} other feature{'s' if healthy != 1 else ''} healthy")
        confidence = 0.85 if healthy > 0 or refused else 0.7
        out.append(Suggestion(Tag.broken_join.value, confidence, "; ".join(parts), KEY))
    drop = _volume_drop(evidence)
    if drop:
        out.append(Suggestion(Tag.data_pipeline_failure.value, 0.75, drop, KEY))
    return out


def _refused(evidence: Evidence) -> list[str]:
    """Reason fragments for features whose absence got events refused at ingest (schema_mismatch 'missing')."""
    refused = evidence.numbers.get("refused") or {}
    rows = int(evidence.numbers.get("rows", 0))
    total = rows + sum(int(n) for n in refused.values())
    found = [(int(n), key.split(":", 1)[1]) for key, n in refused.items() if key.startswith("missing:")]
    if not found:  # evidence without numbers: the schema check's own findings
        found = [(int(f.get("rejected", 0)), f["feature"]) for f in evidence.breached("data_quality")
                 if f["detector"] == "schema_mismatch" and f["test"] == "missing" and f.get("rejected")]
        total = max((int(f.get("events", 0)) for f in evidence.findings if f["detector"] == "schema_mismatch"),
                    default=0)
    return [f"{feature} missing from {n} refused events ({n / max(total, 1):.0%} of the window's {total})"
            for n, feature in sorted(found, reverse=True)[:3]]


def _volume_drop(evidence: Evidence) -> str | None:
    for f in evidence.breached("volume"):
        side = "below the floor" if f.get("direction") == "below" else "above the ceiling"
        return f"{f['score']:.0f} events in the window, {side} of {f['threshold']:.0f} ({f['test']})"
    volume = evidence.numbers.get("volume") or {}
    expected = volume.get("expected")
    if expected and volume.get("rows", 0) < VOLUME_DROP * expected:
        return f"{volume['rows']} events in the window vs {expected:.0f} usual (median of the previous windows)"
    return None
