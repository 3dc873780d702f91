"""Event volume against the expected rate: a dead or throttled feed (drop), a retry storm or bot traffic (spike)."""

import statistics
from typing import ClassVar

from pydantic import Field

from detectors.base import DATASET, Detector, DetectorKind, Finding, InsufficientData, Window
from detectors.registry import register
from detectors.sketches import drift as sketched


@register
class Volume(Detector):
    """Events in the window against a static hourly rate, or else the median of the previous windows.

    Two findings, `volume_drop` and `volume_spike`, scored by the event count; extra holds `expected` and either
    `expected_per_hour` and `window_hours` (static rate) or `history_windows` (how many windows the median saw).
    Needs no rows: an empty window is exactly the dead feed this catches.
    """

    name: ClassVar[str] = "volume"
    kind: ClassVar[DetectorKind] = DetectorKind.VOLUME
    needs_events: ClassVar[bool] = False  # an empty window is the dead feed this catches
    profiles: ClassVar[bool] = True  # in profile mode the count is the merged profile's rows
    expected_per_hour: float | None = Field(default=None, gt=0, description="Static rate; None learns it from history")
    min_history: int = Field(default=3, ge=1, description="Fewer previous windows: insufficient data")
    max_drop: float = Field(default=0.5, ge=0, le=1, description="Breach below expected * (1 - max_drop)")
    max_spike: float = Field(default=1.0, ge=0, description="Breach above expected * (1 + max_spike)")

    def run(self, window: Window) -> list[Finding]:
        count = float(window.events)
        expected, source = self.expected(window)
        extra = source | {"expected": expected} | ({"ratio": count / expected} if expected > 0 else {})
        low, high = expected * (1 - self.max_drop), expected * (1 + self.max_spike)
        findings = [
            Finding(self.name, self.engine, "volume_drop", DATASET, score=count, threshold=low, breached=count < low,
                    direction="below", statistic=count, extra=dict(extra)),
            Finding(self.name, self.engine, "volume_spike", DATASET, score=count, threshold=high,
                    breached=count > high, direction="above", statistic=count, extra=dict(extra)),
        ]
        return findings if window.sketched is None else sketched.counted(findings, window.sketched[1].k)

    def expected(self, window: Window) -> tuple[float, dict[str, float]]:
        """The expected event count of the window, and where it came from (for the finding's extra)."""
        if self.expected_per_hour is not None:
            if window.start is None or window.end is None:
                raise InsufficientData("a static rate needs the window's start and end")
            hours = (window.end - window.start).total_seconds() / 3600
            if hours <= 0:
                raise InsufficientData(f"the window spans {hours * 3600:g} s; a static rate needs a positive span")
            return self.expected_per_hour * hours, {"expected_per_hour": self.expected_per_hour, "window_hours": hours}
        history = window.history_counts
        if len(history) < self.min_history:
            raise InsufficientData(f"{len(history)} previous windows, need {self.min_history}")
        return float(statistics.median(history)), {"history_windows": float(len(history))}
