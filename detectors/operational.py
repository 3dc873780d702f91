"""Operational and business KPIs: serving latency, the share of failed predictions, and pushed business metrics."""

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from detectors.base import ERROR, LATENCY, Detector, DetectorKind, Finding, InsufficientData, Window
from detectors.registry import register


@register
class Latency(Detector):
    """A percentile of serving latency (ms) against `max_ms`; missing (NaN) latencies are left out.

    Percentiles interpolate linearly between the closest ranks (numpy's default); extra holds p50, p95 and p99.
    """

    name: ClassVar[str] = "latency"
    kind: ClassVar[DetectorKind] = DetectorKind.OPERATIONAL
    max_ms: float = Field(gt=0, description="Breach when the chosen percentile is above this many milliseconds")
    percentile: float = Field(default=95, gt=0, le=100)
    min_events: int = Field(default=30, gt=0)

    def run(self, window: Window) -> list[Finding]:
        if LATENCY not in window.current:
            raise InsufficientData("the window has no latency column")
        values = pd.to_numeric(window.current[LATENCY], errors="coerce").to_numpy(dtype=np.float64)
        timed = values[np.isfinite(values)]
        if len(timed) < self.min_events:
            raise InsufficientData(f"{len(timed)} events with a latency, need {self.min_events}")
        p50, p95, p99, score = (float(v) for v in np.percentile(timed, [50, 95, 99, self.percentile]))
        extra = {"p50": p50, "p95": p95, "p99": p99, "events": float(len(timed)),
                 "without_latency": float(len(values) - len(timed))}
        return [Finding(self.name, self.engine, f"p{self.percentile:g}", "latency_ms", score=score,
                        threshold=self.max_ms, breached=score > self.max_ms, direction="above", statistic=score,
                        extra=extra)]


@register
class ErrorRate(Detector):
    """Share of events whose prediction failed (ERROR is set), against `max_rate`."""

    name: ClassVar[str] = "error_rate"
    kind: ClassVar[DetectorKind] = DetectorKind.OPERATIONAL
    max_rate: float = Field(default=0.01, ge=0, le=1)
    min_events: int = Field(default=30, gt=0)

    def run(self, window: Window) -> list[Finding]:
        if ERROR not in window.current:
            raise InsufficientData("the window has no error column")
        events = len(window.current)
        if events < self.min_events:
            raise InsufficientData(f"{events} events, need {self.min_events}")
        errors = int(window.current[ERROR].notna().sum())
        rate = errors / events
        return [Finding(self.name, self.engine, "error_rate", "error_rate", score=rate, threshold=self.max_rate,
                        breached=rate > self.max_rate, direction="above", statistic=rate,
                        extra={"errors": float(errors), "events": float(events)})]


@register
class BusinessKPI(Detector):
    """A business metric pushed through the API (Window.metrics), aggregated over the window, against bounds.

    One finding per bound set: test "<aggregate>_min" breaches below `min_value`, "<aggregate>_max" above
    `max_value`. Points without a numeric value are left out; `last` is the value with the latest timestamp.
    """

    name: ClassVar[str] = "business_kpi"
    kind: ClassVar[DetectorKind] = DetectorKind.BUSINESS_KPI
    needs_events: ClassVar[bool] = False  # pushed points, not serving events: a quiet window still has them
    metric: str = Field(min_length=1, max_length=200)
    aggregate: Literal["mean", "sum", "last", "count"] = "mean"
    min_value: float | None = None
    max_value: float | None = None
    min_points: int = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> "BusinessKPI":
        if self.min_value is None and self.max_value is None:
            raise ValueError("set min_value or max_value")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError("min_value is above max_value")
        return self

    def aggregated(self, points: pd.DataFrame) -> float:
        """The points' values reduced to one number."""
        values = points["value"]
        if self.aggregate == "last":
            return float(values.iloc[-1])
        if self.aggregate == "count":
            return float(len(values))
        return float(values.mean() if self.aggregate == "mean" else values.sum())

    def run(self, window: Window) -> list[Finding]:
        metrics = window.metrics
        if metrics is None or metrics.empty:
            raise InsufficientData(f"no '{self.metric}' points in the window")
        points = metrics[metrics["name"] == self.metric].assign(
            value=lambda f: pd.to_numeric(f["value"], errors="coerce"))
        points = points[np.isfinite(points["value"].astype(np.float64))]
        if points.empty:
            raise InsufficientData(f"no '{self.metric}' points in the window")
        if len(points) < self.min_points:
            raise InsufficientData(f"{len(points)} '{self.metric}' points, need {self.min_points}")
        if "ts" in points:
            points = points.sort_values("ts", kind="stable")
        score = self.aggregated(points)
        extra = {"points": float(len(points))}
        findings = []
        if self.min_value is not None:
            findings.append(Finding(self.name, self.engine, f"{self.aggregate}_min", self.metric, score=score,
                                    threshold=self.min_value, breached=score < self.min_value, extra=extra))
        if self.max_value is not None:
            findings.append(Finding(self.name, self.engine, f"{self.aggregate}_max", self.metric, score=score,
                                    threshold=self.max_value, breached=score > self.max_value, direction="above",
                                    extra=extra))
        return findings
