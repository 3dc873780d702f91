"""Thresholds: the detector's own (static), or learned from healthy scores and applied to its findings.

A learned threshold comes from the monitor's own healthy history (scores the service stored, oldest first) or from
reference chunks (each chunk of the reference checked as if it were a serving window), as NannyML's
StandardDeviationThreshold does over reference chunks (mean +- k * population std). Fitting is pure: the caller
stamps `fitted_at` and re-fits on its schedule.

Direction: `q` and `k` always describe the healthy side. For an "above" check (a distance, a share) the learned
threshold is quantile(q) or mean + k*std; for a "below" check (a p-value, accuracy) it is quantile(1 - q) or
mean - k*std. A learned threshold breaches only strictly beyond it (score > t above, score < t below), whatever
the detector's own comparison: a learned value is itself a healthy score, so with `>=` a constant healthy history
(an out-of-range share that is always 0) would breach on every pass.

Floor: the strictest a learned threshold may get. Above: max(learned, floor); below: min(learned, floor). Either
way a score on the healthy side of `floor` never breaches, so a too-quiet history (zero variance, p-values all 1)
cannot turn noise into alerts.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from detectors.base import Detector, Finding, Window

log = logging.getLogger(__name__)

Direction = Literal["below", "above"]
Key = tuple[str, str]  # (test, feature): one threshold per statistic per feature, within one detector config
Source = Literal["history", "reference_chunks"]
CHUNK_FIELDS = frozenset({"chunks", "chunk_rows", "against"})


class StaticThreshold(BaseModel):
    """Use the detector's own threshold and verdict (the default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: Literal["static"] = "static"


class LearnedThreshold(BaseModel):
    """What both learned modes share: where the healthy scores come from, how many, and the floor."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: Source = "history"
    min_samples: int = Field(default=10, ge=2, description="Fewer healthy scores: keep the static threshold")
    max_history: int | None = Field(default=None, ge=2, description="Use only the newest N healthy scores")
    floor: float | None = Field(default=None, description="The strictest the learned threshold may be")
    chunks: int = Field(default=10, ge=2, description="reference_chunks: split the reference into this many")
    chunk_rows: int | None = Field(
        default=None, gt=0, description="reference_chunks: chunks of this many rows instead (best: the window size)")
    against: Literal["rest", "whole"] = Field(
        default="rest", description="reference_chunks: compare each chunk with the rest of the reference, or all")

    @model_validator(mode="after")
    def _consistent(self) -> "LearnedThreshold":
        chunk_fields = sorted(CHUNK_FIELDS & self.model_fields_set)
        if self.source == "history" and chunk_fields:
            raise ValueError(f"{', '.join(chunk_fields)}: only with source 'reference_chunks'")
        if {"chunks", "chunk_rows"} <= self.model_fields_set:
            raise ValueError("chunk_rows: set chunks or chunk_rows, not both")
        if self.source == "reference_chunks" and self.chunk_rows is None and self.chunks < self.min_samples:
            raise ValueError(f"chunks: {self.chunks} chunks < min_samples {self.min_samples}, so never learned")
        if self.max_history is not None and self.max_history < self.min_samples:
            raise ValueError(f"max_history: {self.max_history} < min_samples {self.min_samples}, so never learned")
        return self


class QuantileThreshold(LearnedThreshold):
    """The q-quantile of healthy scores on the healthy side (quantile 1-q for checks that breach below)."""

    mode: Literal["quantile"]
    q: float = Field(default=0.99, gt=0, lt=1)


class MeanStdThreshold(LearnedThreshold):
    """Mean + k * std of healthy scores (mean - k * std for checks that breach below); std is ddof=0, as NannyML."""

    mode: Literal["mean_std"]
    k: float = Field(default=3.0, ge=0)


ThresholdSpec = Annotated[StaticThreshold | QuantileThreshold | MeanStdThreshold, Field(discriminator="mode")]
_SPEC: TypeAdapter[ThresholdSpec] = TypeAdapter(ThresholdSpec)


def parse_spec(data: Mapping[str, Any] | None) -> ThresholdSpec:
    """Validate a monitor's `threshold` JSON (None: static); a bad field raises pydantic's ValidationError."""
    return StaticThreshold() if data is None else _SPEC.validate_python(data)


@dataclass(frozen=True)
class ScoreHistory:
    """Healthy scores of one (test, feature), oldest first, and the side its checks breach on."""

    direction: Direction
    scores: Sequence[float]


class FittedThreshold(BaseModel):
    """A learned threshold (value None: too few scores, keep the static one) and a line saying how it was made."""

    model_config = ConfigDict(frozen=True)
    value: float | None
    source: str
    n: int
    direction: Direction


def collect(findings: Iterable[Finding]) -> dict[Key, ScoreHistory]:
    """Group findings' scores by (test, feature), in the order given."""
    scores: dict[Key, list[float]] = {}
    directions: dict[Key, Direction] = {}
    for f in findings:
        key = (f.test, f.feature)
        scores.setdefault(key, []).append(f.score)
        directions.setdefault(key, f.direction)
    return {key: ScoreHistory(directions[key], values) for key, values in scores.items()}


def fit(spec: ThresholdSpec, scores_by_key: Mapping[Key, ScoreHistory]) -> dict[Key, FittedThreshold]:
    """Learn one threshold per key from its healthy scores; a static spec learns nothing."""
    if isinstance(spec, StaticThreshold):
        return {}
    return {key: fit_one(spec, history) for key, history in scores_by_key.items()}


def fit_one(spec: QuantileThreshold | MeanStdThreshold, history: ScoreHistory) -> FittedThreshold:
    """Learn the threshold of one key; NaN and +-inf scores are ignored."""
    import numpy as np  # here, not at the top: `watchtower monitor` imports this module even with nothing to check

    values = np.asarray(history.scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if spec.max_history is not None:
        values = values[-spec.max_history:]
    n, above = len(values), history.direction == "above"
    of = f"over {n} reference chunks" if spec.source == "reference_chunks" else f"of {n} healthy scores"
    if n < spec.min_samples:
        what = "reference chunks" if spec.source == "reference_chunks" else "healthy scores"
        return FittedThreshold(value=None, source=f"static (only {n} {what}, need {spec.min_samples})", n=n,
                               direction=history.direction)
    if isinstance(spec, QuantileThreshold):
        q = spec.q if above else 1 - spec.q
        learned, how = float(np.quantile(values, q)), f"quantile {q:g}"
    else:
        spread = spec.k * float(values.std())
        learned = float(values.mean()) + (spread if above else -spread)
        how = f"mean{'+' if above else '-'}{spec.k:g}·std"
    value, source = learned, f"{how} {of}"
    if spec.floor is not None and (learned < spec.floor if above else learned > spec.floor):
        value, source = spec.floor, f"{source}, held at floor {spec.floor:g} (learned {learned:.4g})"
    return FittedThreshold(value=value, source=source, n=n, direction=history.direction)


def apply(findings: Iterable[Finding], fitted: Mapping[Key, FittedThreshold]) -> list[Finding]:
    """Each finding with its key's learned threshold and a verdict recomputed on it; others unchanged."""
    return [_apply_one(f, fitted.get((f.test, f.feature))) for f in findings]


def _apply_one(finding: Finding, fitted: FittedThreshold | None) -> Finding:
    if fitted is None:
        return finding
    if fitted.direction != finding.direction:
        raise ValueError(f"{finding.detector} {finding.test} {finding.feature}: threshold fitted for "
                         f"{fitted.direction}, finding breaches {finding.direction}")
    if fitted.value is None:  # too few healthy scores: the detector's own threshold and verdict stand
        return replace(finding, threshold_source=fitted.source)
    t, score = fitted.value, finding.score
    breached = score > t if finding.direction == "above" else score < t
    # native_drift counts a rejected test only with a large enough effect; a learned threshold keeps that rule.
    min_effect = finding.extra.get("min_effect")
    if min_effect and "effect" in finding.extra:
        breached = breached and finding.extra["effect"] >= min_effect
    return replace(finding, threshold=t, breached=bool(breached), threshold_source=fitted.source)


def chunk_bounds(rows: int, chunks: int = 10, chunk_rows: int | None = None) -> list[tuple[int, int]]:
    """Consecutive [start, stop) row ranges: `chunks` near-equal ones, or full chunks of `chunk_rows` rows."""
    if chunk_rows is not None:
        return [(start, start + chunk_rows) for start in range(0, rows - chunk_rows + 1, chunk_rows)]
    import numpy as np

    bounds = np.linspace(0, rows, chunks + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def reference_chunk_scores(detector: Detector, window: Window, chunks: int = 10, *, chunk_rows: int | None = None,
                           against: Literal["rest", "whole"] = "rest") -> dict[Key, ScoreHistory]:
    """Scores of the detector with each reference chunk as the current rows (InsufficientData propagates).

    Against "rest" the chunk is left out of the reference, so the two samples are independent, and the window's
    profile (of the whole reference) is not passed: the detector profiles the rest itself. Against "whole" the
    chunk is part of its own reference (NannyML's way; distances come out smaller) and the profile is reused.
    Distances shrink as samples grow, so chunks should be about as large as the serving window (`chunk_rows`).
    """
    reference = window.reference
    bounds = chunk_bounds(len(reference), chunks, chunk_rows)
    findings: list[Finding] = []
    for start, stop in bounds:
        part = reference.iloc[start:stop].reset_index(drop=True)
        if against == "whole":
            chunk_window = Window(reference, part, window.schema, window.task, window.profile)
        else:
            import pandas as pd  # here only: the app's start-up imports this module

            rest = pd.concat([reference.iloc[:start], reference.iloc[stop:]], ignore_index=True)
            chunk_window = Window(rest, part, window.schema, window.task)
        findings += detector.run(chunk_window)
    log.info("thresholds: %s scored %d reference chunks against the %s", detector.name, len(bounds), against)
    return collect(findings)


def learn(spec: ThresholdSpec, detector: Detector, window: Window,
          history: Mapping[Key, ScoreHistory] | None = None) -> dict[Key, FittedThreshold]:
    """Fit a spec from its source: the given healthy history, or the window's reference chunks."""
    if isinstance(spec, StaticThreshold):
        return {}
    if spec.source == "reference_chunks":
        history = reference_chunk_scores(detector, window, spec.chunks, chunk_rows=spec.chunk_rows,
                                         against=spec.against)
    return fit(spec, history or {})
