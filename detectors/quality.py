"""Data quality: missing values against the reference's own share, values outside its range, unseen categories.
Each also runs on a window's merged profiles (profile mode)."""

from dataclasses import replace
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from detectors.base import Detector, DetectorKind, Finding, Window
from detectors.registry import register
from detectors.sketches import drift as sketched
from detectors.sketches import quality as profiled
from detectors.sketches.profile import Profile


@register
class MissingValues(Detector):
    """Breach when a feature's missing share in serving exceeds its reference share by more than `max_increase`."""

    name: ClassVar[str] = "missing_values"
    kind: ClassVar[DetectorKind] = DetectorKind.DATA_QUALITY
    profiles: ClassVar[bool] = True  # the profiles count missing values exactly
    max_increase: float = Field(default=0.05, ge=0, le=1)

    def run(self, window: Window) -> list[Finding]:
        if window.sketched is not None:
            reference, current = window.sketched
            shares = [(column, missing_share(reference, column), missing_share(current, column))
                      for column in window.schema]
            return sketched.counted([self._finding(*share) for share in shares], current.k)
        return [self._finding(column, float(window.reference[column].isna().mean()),
                              float(window.current[column].isna().mean())) for column in window.schema]

    def _finding(self, column: str, reference: float, current: float) -> Finding:
        threshold = min(1.0, reference + self.max_increase)
        return Finding(self.name, self.engine, "missing_share", column, score=current, threshold=threshold,
                       breached=current > threshold, direction="above", extra={"reference_share": reference})


def missing_share(profile: Profile, column: str) -> float:
    """The share of a profile's rows with no value in `column` (a column the profile lacks is all missing)."""
    if column in profile.numeric:
        missing = profile.numeric[column].missing
    elif column in profile.categorical:
        missing = profile.categorical[column].missing
    else:
        missing = profile.rows
    return missing / profile.rows if profile.rows else float("nan")


@register
class OutOfRange(Detector):
    """Share of a numeric feature's serving values outside the reference's [min, max] (NaN and ±inf count too)."""

    name: ClassVar[str] = "out_of_range"
    kind: ClassVar[DetectorKind] = DetectorKind.DATA_QUALITY
    profiles: ClassVar[bool] = True  # the reference's exact min and max, the current sketch's ranks
    max_share: float = Field(default=0.01, ge=0, le=1, description="Breach above this share of out-of-range values")
    features: list[str] | None = Field(default=None, min_length=1,
                                       description="Only these numeric features (a guard's pinned set); None: all")

    def run(self, window: Window) -> list[Finding]:
        if window.sketched is not None:
            return self.run_sketched(*window.sketched, self._columns(window))
        findings = []
        for column in self._columns(window):
            reference = pd.to_numeric(window.reference[column], errors="coerce")
            current = pd.to_numeric(window.current[column], errors="coerce").dropna()
            finite = reference[np.isfinite(reference)]
            if current.empty or finite.empty:
                continue
            low, high = float(finite.min()), float(finite.max())
            outside = float(((current < low) | (current > high) | ~np.isfinite(current)).mean())
            findings.append(Finding(self.name, self.engine, "out_of_range", column, score=outside,
                                    threshold=self.max_share, breached=outside > self.max_share, direction="above",
                                    extra={"reference_min": low, "reference_max": high}))
        return findings

    def run_sketched(self, reference: Profile, current: Profile, columns: list[str]) -> list[Finding]:
        findings = []
        for column in columns:
            ref, cur = reference.numeric.get(column), current.numeric.get(column)
            if ref is None or cur is None or ref.count == 0:
                continue
            outside = profiled.outside_range(ref.minimum, ref.maximum, cur)
            if outside is None:
                continue
            findings.append(_bounded(Finding(
                self.name, self.engine, "out_of_range", column, score=outside.share, threshold=self.max_share,
                breached=outside.share > self.max_share, direction="above",
                extra={"reference_min": ref.minimum, "reference_max": ref.maximum}), outside.bound, current.k,
                two_sided=True))
        return findings

    def _columns(self, window: Window) -> list[str]:
        return [c for c in window.columns_of("numeric") if self.features is None or c in self.features]


@register
class UnseenCategories(Detector):
    """Share of a categorical feature's serving values never seen in the reference (a renamed or broken feed)."""

    name: ClassVar[str] = "unseen_categories"
    kind: ClassVar[DetectorKind] = DetectorKind.DATA_QUALITY
    profiles: ClassVar[bool] = True  # exact category counts (below the cap)
    max_share: float = Field(default=0.01, ge=0, le=1, description="Breach above this share of unseen values")

    def run(self, window: Window) -> list[Finding]:
        if window.sketched is not None:
            return self.run_sketched(*window.sketched, window.columns_of("categorical"))
        findings = []
        for column in window.columns_of("categorical"):
            known = set(window.reference[column].dropna().astype(str))
            current = window.current[column].dropna().astype(str)
            if current.empty:
                continue
            unseen = ~current.isin(known)
            share = float(unseen.mean())
            findings.append(Finding(self.name, self.engine, "unseen_share", column, score=share,
                                    threshold=self.max_share, breached=share > self.max_share, direction="above",
                                    extra={"unseen_values": float(current[unseen].nunique())}))
        return findings

    def run_sketched(self, reference: Profile, current: Profile, columns: list[str]) -> list[Finding]:
        findings = []
        for column in columns:
            ref, cur = reference.categorical.get(column), current.categorical.get(column)
            if ref is None or cur is None or (found := profiled.unseen(ref, cur)) is None:
                continue
            share, named = found
            finding = Finding(self.name, self.engine, "unseen_share", column, score=share.share,
                              threshold=self.max_share, breached=share.share > self.max_share, direction="above",
                              extra={"unseen_values": float(named)})
            if ref.capped or cur.capped:
                finding = replace(finding, note=f"categories beyond the cap: up to {share.bound:.4f} more of the "
                                  "values may be unseen", extra=finding.extra | {"capped": 1.0})
            findings.append(_bounded(finding, share.bound, current.k, two_sided=False))
        return findings


def _bounded(finding: Finding, bound: float, k: int, two_sided: bool) -> Finding:
    """A profile-mode share with its error bound (either way, or only upwards); "near threshold" when the bound
    could put the share on the other side of the threshold."""
    low = finding.score - bound if two_sided else finding.score
    near = bool(bound) and low <= finding.threshold < finding.score + bound
    notes = [finding.note] if finding.note else []
    if near:
        spread = f"+- {bound:.4f}" if two_sided else f"+ up to {bound:.4f}"
        notes.append(f"near threshold: share {finding.score:.4f} {spread} could fall on either side")
    return replace(finding, mode=sketched.sketch_mode(k), note="; ".join(notes),
                   extra=finding.extra | {"error_bound": bound, "near_threshold": float(near)})
