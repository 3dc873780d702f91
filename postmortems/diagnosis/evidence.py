"""What a diagnosis gets: the breached findings of an incident's (merged) evidence and the numbers measured at
breach time; and what it gives: suggestions, each a tag with a confidence, a reason and its signature."""

from dataclasses import dataclass, field
from typing import Any

from detectors import registry
from detectors.base import DATASET

ALPHA = 0.05  # family-wise level over the features when the numbers call a feature "moved"


@dataclass(frozen=True)
class Suggestion:
    """A taxonomy tag the evidence points at, how sure (0..1), why (naming the numbers), and who said it."""

    tag: str
    confidence: float
    reason: str
    signature: str


@dataclass(frozen=True)
class Evidence:
    """The breached findings (each with its detector and detector kind) and the window's numbers."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, evidence: dict[str, Any]) -> "Evidence":
        """From an incident's evidence dict (open_incident.evidence_of, merged over later breaches)."""
        findings = [f | {"detector": c["detector"], "kind": str(registry.kind_of(c["detector"]) or "")}
                    for c in evidence.get("checks", []) if c.get("status") == "breached"
                    for f in c.get("findings", [])]
        return cls(findings, dict(evidence.get("diagnosis") or {}))

    def breached(self, *kinds: str) -> list[dict[str, Any]]:
        """Breached findings of detectors of these kinds."""
        return [f for f in self.findings if f["kind"] in kinds]

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return dict(self.numbers.get("features") or {})

    def moved(self) -> list[str]:
        """Features whose distribution moved (p below ALPHA over the number of features), most moved first."""
        features = self.features
        level = ALPHA / max(len(features), 1)
        moved = [(n.get("p", 1.0), name) for name, n in features.items() if n.get("p", 1.0) < level]
        return [name for _, name in sorted(moved)]

    def drifted(self) -> list[str]:
        """Features that input-drift detectors flagged."""
        return sorted({f["feature"] for f in self.breached("input_drift") if f["feature"] != DATASET})

    def shifted(self) -> list[str]:
        """Features that moved by the numbers or by a drift detector (evidence without numbers: detectors only)."""
        return sorted(set(self.moved()) | set(self.drifted()))


def merge_numbers(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The newest window's numbers win section by section (per feature); a section only the old has stays."""
    merged = old | new
    merged["features"] = dict(old.get("features") or {}) | dict(new.get("features") or {})
    for section in ("kpi", "prediction", "volume", "refused"):
        merged[section] = new.get(section) or old.get(section) or {}
    return merged


def p_text(p: float) -> str:
    """A p-value as a reason shows it: 0.41, 0.003, 2e-14, < 1e-300."""
    return f"{p:.2g}" if p >= 0.001 else f"{p:.0e}" if p > 1e-300 else "< 1e-300"
