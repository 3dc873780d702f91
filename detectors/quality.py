"""Data quality: share of missing values per feature, against the reference's own share."""

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from detectors.base import Detector, DetectorKind, Finding, Window
from detectors.registry import register
from detectors.sketches import drift as sketched
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
    max_share: float = Field(default=0.01, ge=0, le=1, description="Breach above this share of out-of-range values")
    features: list[str] | None = Field(default=None, min_length=1,
                                       description="Only these numeric features (a guard's pinned set); None: all")

    def run(self, window: Window) -> list[Finding]:
        findings = []
        for column in window.columns_of("numeric"):
            if self.features is not None and column not in self.features:
                continue
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


@register
class UnseenCategories(Detector):
    """Share of a categorical feature's serving values never seen in the reference (a renamed or broken feed)."""

    name: ClassVar[str] = "unseen_categories"
    kind: ClassVar[DetectorKind] = DetectorKind.DATA_QUALITY
    max_share: float = Field(default=0.01, ge=0, le=1, description="Breach above this share of unseen values")

    def run(self, window: Window) -> list[Finding]:
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
