"""Infinite values in numeric features: missing_values counts only NaN, and a division by zero upstream is ±inf."""

from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from detectors.base import Detector, DetectorKind, Finding, Window
from detectors.registry import register
from detectors.sketches import drift as sketched
from detectors.sketches.profile import Profile


def infinite_counts(column: pd.Series) -> tuple[int, int]:
    """(+inf, -inf) counts of a column read as numbers (text that is not a number is not counted here)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    return int(np.sum(values == np.inf)), int(np.sum(values == -np.inf))


@register
class NonFinite(Detector):
    """Share of a numeric feature's serving values that are +inf or -inf, one finding per numeric feature."""

    name: ClassVar[str] = "non_finite"
    kind: ClassVar[DetectorKind] = DetectorKind.DATA_QUALITY
    profiles: ClassVar[bool] = True  # the profiles count ±inf exactly (both signs together)
    max_share: float = Field(default=0.0, ge=0, le=1, description="Breach above this share of infinite values")

    def run(self, window: Window) -> list[Finding]:
        if window.sketched is not None:
            return self.run_sketched(*window.sketched, window.columns_of("numeric"))
        findings = []
        rows = len(window.current)
        for column in window.columns_of("numeric"):
            if column not in window.current.columns or rows == 0:
                continue
            positive, negative = infinite_counts(window.current[column])
            share = (positive + negative) / rows
            reference = sum(infinite_counts(window.reference[column])) / max(len(window.reference), 1) \
                if column in window.reference.columns else 0.0
            findings.append(Finding(self.name, self.engine, "non_finite_share", column, score=share,
                                    threshold=self.max_share, breached=share > self.max_share, direction="above",
                                    extra={"pos_inf": float(positive), "neg_inf": float(negative),
                                           "reference_share": reference}))
        return findings

    def run_sketched(self, reference: Profile, current: Profile, columns: list[str]) -> list[Finding]:
        """Shares from the profiles' counts; a profile counts +inf and -inf together (extra `non_finite`)."""
        findings = []
        for column in columns:
            if column not in current.numeric or current.rows == 0:
                continue
            count = current.numeric[column].non_finite
            share = count / current.rows
            ref = reference.numeric.get(column)
            reference_share = ref.non_finite / reference.rows if ref is not None and reference.rows else 0.0
            findings.append(Finding(self.name, self.engine, "non_finite_share", column, score=share,
                                    threshold=self.max_share, breached=share > self.max_share, direction="above",
                                    extra={"non_finite": float(count), "reference_share": reference_share}))
        return sketched.counted(findings, current.k)
