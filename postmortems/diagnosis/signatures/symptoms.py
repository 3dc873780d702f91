"""Symptoms: what the breached detectors show (feature or prediction distribution shift, KPI degradation, broken
values), suggested at a modest confidence beside the root causes the other signatures find."""

from postmortems.diagnosis.evidence import Evidence, Suggestion
from postmortems.taxonomy import SYMPTOMS_OF

KEY = "symptoms"
CONFIDENCE = 0.5


def suggest(evidence: Evidence) -> list[Suggestion]:
    """One suggestion per symptom tag, naming the detectors and features that showed it."""
    seen: dict[str, dict[str, list[str]]] = {}
    for f in evidence.findings:
        for tag in SYMPTOMS_OF.get(f["detector"], []):
            seen.setdefault(tag.value, {}).setdefault(f["detector"], []).append(f["feature"])
    return [Suggestion(tag, CONFIDENCE, "; ".join(f"{d} breached on {', '.join(sorted(set(fs))[:5])}"
                                                  for d, fs in sorted(by.items())), KEY)
            for tag, by in seen.items()]
