"""Findings of one monitor pass -> a Breach, or None."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from detectors.base import DATASET, Finding

if TYPE_CHECKING:  # decide.py imports DetectorOutcome from here
    from watchtower.policy.decide import Plan


def is_feature_drift(detector: str) -> bool:
    """Detectors whose findings are per input feature (not the prediction, not a KPI)."""
    return detector.endswith("_drift") and detector != "prediction_drift"


@dataclass(frozen=True)
class DetectorOutcome:
    """What one detector said in a pass, with the id of its stored CheckRun."""

    check_run_id: int
    detector: str
    status: str  # ok | breached | insufficient_data | error
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class Breach:
    """A pass whose checks crossed their thresholds: everything actions need to know."""

    model_id: int
    model_name: str
    monitor_id: int
    monitor_name: str
    window_start: datetime
    window_end: datetime
    outcomes: list[DetectorOutcome]
    # When the earliest event of the window was served (a count window: its block's first event). Time to
    # detect counts from here, never from the window's nominal start.
    first_event_at: datetime | None = None
    plan: "Plan | None" = None  # what the response policy decided about this pass
    group_key: str = ""  # breaches with the same key join one open incident
    # The window's numbers a diagnosis needs (postmortems.diagnosis.numbers.measure), measured when it breached.
    diagnosis: dict[str, Any] = field(default_factory=dict)

    @property
    def breached(self) -> list[DetectorOutcome]:
        return [o for o in self.outcomes if o.status == "breached"]

    @property
    def breached_findings(self) -> list[Finding]:
        return [f for o in self.breached for f in o.findings if f.breached]

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for o in self.breached if is_feature_drift(o.detector)
                for f in o.findings if f.breached and f.feature != DATASET]


def group_key(grouping: str, model_id: int, monitor_id: int) -> str:
    """The open-incident key of a breach: the model (default), or the model and its monitor."""
    return f"model:{model_id}" if grouping == "model" else f"model:{model_id}:monitor:{monitor_id}"
