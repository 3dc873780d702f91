"""Skew between two pipeline stages: the same entity's features as logged at one stage and as seen at another.

TFDV's skew comparator, per feature on the rows joined by ID: the share of rows whose values differ (the
"feature as generated for training is not the feature as served" bug) and the distance between the two joined
distributions (L-infinity for categoricals as TFDV does, normed Wasserstein or Jensen-Shannon for numerics).
"""

import logging
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from detectors import categorical_stats as cat
from detectors import numeric_stats as num
from detectors.base import ID, Detector, DetectorKind, FeatureType, Finding, InsufficientData, Window
from detectors.profile import category_counts, finite_values, profile_categorical, profile_numeric
from detectors.registry import register

log = logging.getLogger(__name__)

SERVING = "serving"  # the stage name that means window.current
BASELINE_SUFFIX = "__baseline"


def values_differ(baseline: pd.Series, compare: pd.Series, kind: FeatureType, abs_tol: float,
                  rel_tol: float) -> pd.Series:
    """Row by row, whether two aligned columns disagree (missing on both sides counts as equal)."""
    if kind == "numeric":
        b = pd.to_numeric(baseline, errors="coerce").to_numpy(dtype=np.float64)
        c = pd.to_numeric(compare, errors="coerce").to_numpy(dtype=np.float64)
        # numpy.isclose's rule, tolerance relative to the baseline: |c - b| <= abs_tol + rel_tol * |b|.
        same = np.isclose(c, b, rtol=rel_tol, atol=abs_tol, equal_nan=True)
        return pd.Series(~same, index=baseline.index)
    b_missing, c_missing = baseline.isna(), compare.isna()
    same_text = as_text(baseline) == as_text(compare)
    return ~((b_missing & c_missing) | (~b_missing & ~c_missing & same_text))


def as_text(column: pd.Series) -> pd.Series:
    """Categorical values as strings, missing kept missing, whole floats without their ".0"."""
    # pandas stores integer codes with gaps as floats: 3.0 in one stage log must still match 3 in another.
    if not pd.api.types.is_float_dtype(column):
        return column.astype(object).where(column.isna(), column.astype(str))
    values = column.to_numpy(dtype=np.float64)
    whole = np.isfinite(values) & (np.mod(values, 1) == 0) & (np.abs(values) < 2**53)
    text = column.astype(str).astype(object)
    text[whole] = values[whole].astype(np.int64).astype(str)
    return text.where(column.notna(), None)


def distance(baseline: pd.Series, compare: pd.Series, kind: FeatureType,
             numeric: Literal["wasserstein", "jensen_shannon"]) -> tuple[str, float] | None:
    """(test, value) between the two joined distributions, or None when a side has too few values."""
    if kind == "categorical":
        categories, counts = category_counts(as_text(compare))
        reference = profile_categorical(as_text(baseline))
        if reference.count == 0 or counts.sum() == 0:
            return None
        _, ref, cur = cat.align(reference, categories, counts)
        return "linf", cat.linf(ref, cur)
    profile = profile_numeric(pd.to_numeric(baseline, errors="coerce"))
    current = np.sort(finite_values(pd.to_numeric(compare, errors="coerce")))
    if profile.count < 2 or len(current) < 2:
        return None
    if numeric == "wasserstein":
        return numeric, num.wasserstein_normed(num.merge(profile.values, current), profile.std)
    return numeric, num.jensen_shannon(num.shares(profile.bin_counts),
                                       num.shares(num.binned_counts(current, profile.bin_edges)))


@register
class FeatureSkew(Detector):
    """Per feature, mismatch rate and distance between two stages' values for the same ids (last logged wins)."""

    name: ClassVar[str] = "feature_skew"
    kind: ClassVar[DetectorKind] = DetectorKind.SKEW
    baseline_stage: str = Field(default="training", min_length=1, description="A key of window.stages")
    compare_stage: str = Field(default=SERVING, min_length=1,
                               description="'serving' for the window's current rows, else a key of window.stages")
    abs_tol: float = Field(default=1e-8, ge=0, description="Numeric values within abs_tol + rel_tol*|baseline| match")
    rel_tol: float = Field(default=1e-5, ge=0)
    max_mismatch_rate: float = Field(default=0.01, ge=0, le=1, description="Breach above this share of joined rows")
    max_distance: float = Field(default=0.1, gt=0, description="Breach above this distance (L-inf, normed W or JS)")
    numeric_distance: Literal["wasserstein", "jensen_shannon"] = "wasserstein"
    min_joined: int = Field(default=30, gt=0, description="Fewer ids found in both stages: insufficient data")

    def run(self, window: Window) -> list[Finding]:
        baseline = self._stage(window, self.baseline_stage)
        compare = self._stage(window, self.compare_stage)
        features = [f for f in window.schema if f in baseline.columns and f in compare.columns]
        absent = [f for f in window.schema if f not in features]
        if absent:
            log.info("feature_skew: %s not logged at both %s and %s; skipped", absent, self.baseline_stage,
                     self.compare_stage)
        if not features:
            raise InsufficientData(f"no schema feature logged at both {self.baseline_stage} and {self.compare_stage}")
        joined = compare[[ID, *features]].merge(baseline[[ID, *features]], on=ID, how="inner",
                                                suffixes=("", BASELINE_SUFFIX))
        if len(joined) < self.min_joined:
            raise InsufficientData(f"{len(joined)} ids found in both {self.baseline_stage} and {self.compare_stage},"
                                   f" need {self.min_joined}")
        # Coverage: the share of the compared ids that the baseline stage logged at all (a logging gap, or ids
        # that never went through that stage).
        sizes = {"joined": float(len(joined)), "coverage": len(joined) / len(compare)}
        findings = []
        for feature in features:
            findings.extend(self._compare(feature, window.schema[feature], joined[feature + BASELINE_SUFFIX],
                                          joined[feature], sizes))
        return findings

    def _stage(self, window: Window, stage: str) -> pd.DataFrame:
        """One stage's rows, one per id (the last logged wins)."""
        frame = window.current if stage == SERVING else window.stages.get(stage)
        if frame is None:
            raise InsufficientData(f"no {stage!r} stage log in the window")
        if ID not in frame.columns:
            raise InsufficientData(f"the {stage!r} stage log has no {ID} column")
        rows = frame[frame[ID].notna()]
        # Ids as strings: one stage may log 17 where another logs "17", and merge refuses mixed key types.
        rows = rows.assign(**{ID: rows[ID].astype(str)})
        return rows.drop_duplicates(subset=ID, keep="last")

    def _compare(self, feature: str, kind: FeatureType, baseline: pd.Series, compare: pd.Series,
                 sizes: dict[str, float]) -> list[Finding]:
        differ = values_differ(baseline, compare, kind, self.abs_tol, self.rel_tol)
        rate = float(differ.mean())
        findings = [Finding(self.name, self.engine, "mismatch_rate", feature, score=rate,
                            threshold=self.max_mismatch_rate, breached=rate > self.max_mismatch_rate,
                            direction="above", extra=sizes | {"mismatched": float(differ.sum())})]
        measured = distance(baseline, compare, kind, self.numeric_distance)
        if measured is not None:
            test, value = measured
            findings.append(Finding(self.name, self.engine, test, feature, score=value, threshold=self.max_distance,
                                    breached=value > self.max_distance, direction="above", statistic=value,
                                    extra=dict(sizes)))
        return findings
