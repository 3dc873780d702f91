"""Data quality: share of missing values per feature, against the reference's own share."""

from typing import ClassVar

from pydantic import Field

from detectors.base import Detector, Finding, Window
from detectors.registry import register


@register
class MissingValues(Detector):
    """Breach when a feature's missing share in serving exceeds its reference share by more than `max_increase`."""

    name: ClassVar[str] = "missing_values"
    max_increase: float = Field(default=0.05, ge=0, le=1)

    def run(self, window: Window) -> list[Finding]:
        findings = []
        for column in window.schema:
            reference = float(window.reference[column].isna().mean())
            current = float(window.current[column].isna().mean())
            threshold = min(1.0, reference + self.max_increase)
            findings.append(Finding(self.name, self.engine, "missing_share", column, score=current,
                                    threshold=threshold, breached=current > threshold, direction="above",
                                    extra={"reference_share": reference}))
        return findings
