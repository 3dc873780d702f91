"""Findings of one monitor pass -> a Breach, or None."""

from dataclasses import dataclass, field
from datetime import datetime

from detectors.base import Finding
from detectors.evidently_compat import DATASET


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


def evaluate(model_id: int, model_name: str, monitor_id: int, monitor_name: str,
             window: tuple[datetime, datetime], outcomes: list[DetectorOutcome]) -> Breach | None:
    """Any detector that breached makes the pass a breach; errors and insufficient data never do."""
    if not any(o.status == "breached" for o in outcomes):
        return None
    return Breach(model_id, model_name, monitor_id, monitor_name, window[0], window[1], outcomes)
