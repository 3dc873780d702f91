"""Serving infrastructure: latency or error-rate breaches; not the model."""

from postmortems.diagnosis.evidence import Evidence, Suggestion
from postmortems.taxonomy import Tag

KEY = "serving_infra"


def suggest(evidence: Evidence) -> list[Suggestion]:
    """Each operational breach, with its number and threshold."""
    parts = []
    for f in evidence.breached("operational"):
        if f["detector"] == "latency":
            parts.append(f"latency {f['test']} {f['score']:.0f} ms > {f['threshold']:g} ms")
        else:
            parts.append(f"{f['feature'].replace('_', ' ')} {f['score']:.1%} > {f['threshold']:.1%}")
    if not parts:
        return []
    return [Suggestion(Tag.serving_infrastructure.value, 0.9, "; ".join(parts) + " (serving path, not the model)",
                       KEY)]
