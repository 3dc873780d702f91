"""The native engine's evidently-compatible mode: Evidently 0.7's default drift tests, reproduced from a profile.

Users switching from Evidently get its numbers without its cost. Reproduced from
`evidently.legacy.calculations.stattests` and `data_drift.get_one_column_drift` (0.7.x):
- NaN and +-inf are dropped; `n_values` is the number of distinct values in reference + current;
- reference <= 1000 values: numeric with n_values > 5 -> KS (drift if p <= 0.05); otherwise chi-square
  (n_values > 2) or z (n_values <= 2), drift if p < 0.05. Evidently's chi-square is a goodness-of-fit test of the
  current counts against the reference proportions (`scipy.stats.chisquare`), not a two-sample test;
- reference > 1000: numeric with n_values > 5 -> Wasserstein / max(std(reference), 0.001) >= 0.1; otherwise
  Jensen-Shannon distance >= 0.1 (natural log, category frequencies; Sturges bins over reference + current for
  numeric features with > 20 distinct reference values);
- dataset drift when the share of drifted columns >= 0.5.
"""

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats

from detectors import numeric_stats as num
from detectors.base import DATASET, Detector, DetectorKind, Finding, InsufficientData, Window
from detectors.categorical_stats import align
from detectors.profile import (
    CategoricalProfile,
    Floats,
    Ints,
    NumericProfile,
    ReferenceProfile,
    category_counts,
    finite_values,
    histogram_sorted,
    profile_reference,
)
from detectors.registry import register

SMALL_REFERENCE = 1000
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
NumericMethod = Literal["auto", "ks", "wasserstein", "jensenshannon", "chisquare", "z"]
CategoricalMethod = Literal["auto", "chisquare", "z", "jensenshannon"]


def default_method(kind: Literal["numeric", "categorical"], reference_rows: int, n_values: int) -> str:
    """Evidently's `_get_default_stattest` for numeric and categorical columns."""
    if reference_rows <= SMALL_REFERENCE:
        if kind == "numeric" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def runs(sorted_values: Floats) -> tuple[Floats, Ints]:
    """Distinct values of a sorted array and how often each occurs."""
    if len(sorted_values) == 0:
        return sorted_values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]]))
    return sorted_values[starts], np.diff(np.append(starts, len(sorted_values))).astype(np.int64)


def value_counts(reference: Floats, current: Floats) -> tuple[Floats, Ints, Ints]:
    """Counts of every distinct value of either sorted sample, over their sorted union."""
    ref_keys, ref_counts = runs(reference)
    cur_keys, cur_counts = runs(current)
    keys = np.union1d(ref_keys, cur_keys)
    ref, cur = np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=np.int64)
    ref[np.searchsorted(keys, ref_keys)] = ref_counts
    cur[np.searchsorted(keys, cur_keys)] = cur_counts
    return keys, ref, cur


def sturges_edges(low: float, high: float, size: int, integer: bool = False) -> Floats:
    """`np.histogram_bin_edges(data, "sturges")` from the data's min, max and size alone."""
    width = (high - low) / (np.log2(size) + 1.0)
    if integer and width < 1:
        width = 1.0
    bins = int(np.ceil((high - low) / width)) if width else 1
    return np.histogram_bin_edges(np.array([low, high]), bins=bins)


def chisquare_gof(ref: Ints, cur: Ints) -> float:
    """Evidently's chi-square: current counts against reference proportions scaled to the current size."""
    expected = ref * (cur.sum() / ref.sum())
    with np.errstate(divide="ignore", invalid="ignore"):  # a category unseen in the reference: p = 0, as Evidently
        return float(stats.chisquare(cur, expected)[1])


def z_evidently(ref: Ints, cur: Ints) -> float:
    """Evidently's z-test: share of values other than the first (sorted) key, p = 2 * (1 - Phi(|z|))."""
    if np.count_nonzero(ref) == 1 and np.count_nonzero(cur) == 1 and np.argmax(ref) == np.argmax(cur):
        return 1.0
    n1, n2 = float(ref.sum()), float(cur.sum())
    p1, p2 = (n1 - ref[0]) / n1, (n2 - cur[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def _numeric(profile: NumericProfile, column: pd.Series, method: str) -> tuple[str, float]:
    reference, current = profile.values, np.sort(finite_values(column))
    if len(current) == 0 or profile.count == 0:
        raise InsufficientData("a column has no finite values on one side")
    ref_keys, _ = runs(reference)
    cur_keys, _ = runs(current)
    known = reference[np.minimum(np.searchsorted(reference, cur_keys), len(reference) - 1)] == cur_keys
    n_values = len(ref_keys) + int((~known).sum())
    if method == "auto":
        method = default_method("numeric", profile.count, n_values)
    if method in ("ks", "wasserstein"):
        merged = num.merge(reference, current)
        if method == "wasserstein":
            return method, num.wasserstein_normed(merged, profile.std)
        return method, num.ks_pvalue(num.ks_statistic(merged), profile.count, len(current), reference, current)
    if method == "jensenshannon" and len(ref_keys) > 20:
        edges = sturges_edges(min(reference[0], current[0]), max(reference[-1], current[-1]),
                              profile.count + len(current), pd.api.types.is_integer_dtype(column))
        ref_share = histogram_sorted(reference, edges) / len(reference)
        return method, num.jensen_shannon(ref_share, histogram_sorted(current, edges) / len(current))
    _, ref, cur = value_counts(reference, current)
    return method, _on_counts(method, ref, cur)


def _on_counts(method: str, ref: Ints, cur: Ints) -> float:
    if method == "chisquare":
        return chisquare_gof(ref, cur)
    if method == "z":
        return z_evidently(ref, cur)
    return num.jensen_shannon(ref / ref.sum(), cur / cur.sum())


def _categorical(profile: CategoricalProfile, column: pd.Series, method: str) -> tuple[str, float]:
    categories, counts = category_counts(column)
    if counts.sum() == 0 or profile.count == 0:
        raise InsufficientData("a column has no values on one side")
    _, ref, cur = align(profile, categories, counts)
    if method == "auto":
        method = default_method("categorical", profile.count, len(ref))
    return method, _on_counts(method, ref, cur)


@register
class EvidentlyCompatibleDrift(Detector):
    """Evidently's DataDriftPreset numbers (test choice, statistics, verdicts, dataset share) on the native engine."""

    name: ClassVar[str] = "evidently_compatible_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.INPUT_DRIFT
    engine: ClassVar[str] = "native"
    mode: ClassVar[str] = "evidently-compatible"
    numeric_method: NumericMethod = "auto"
    categorical_method: CategoricalMethod = "auto"
    p_value: float = Field(default=0.05, gt=0, lt=1, description="Threshold of ks, chisquare and z (Evidently's)")
    distance_threshold: float = Field(default=0.1, gt=0, description="Threshold of wasserstein and jensenshannon")
    drift_share: float = Field(default=0.5, gt=0, le=1, description="Dataset drift at this share of drifted columns")

    def run(self, window: Window) -> list[Finding]:
        """Check the window against its stored profile, or profile the reference now."""
        return self.check(window.profile or profile_reference(window.reference, window.schema), window.current)

    def check(self, profile: ReferenceProfile, current: pd.DataFrame) -> list[Finding]:
        """One finding per column as Evidently's ValueDrift, then the dataset-level drift share."""
        results = [(name, *_numeric(p, current[name], self.numeric_method)) for name, p in profile.numeric.items()]
        results += [(name, *_categorical(c, current[name], self.categorical_method))
                    for name, c in profile.categorical.items()]
        findings = [self._finding(feature, method, value) for feature, method, value in results]
        drifted = sum(f.breached for f in findings)
        share = drifted / len(findings) if findings else 0.0
        findings.append(Finding(self.name, self.mode, "drift_share", DATASET, score=share, threshold=self.drift_share,
                                breached=share >= self.drift_share, direction="above", statistic=share,
                                extra={"drifted_columns": float(drifted), "columns": float(len(findings))}))
        return findings

    def _finding(self, feature: str, method: str, value: float) -> Finding:
        if method in P_VALUE_METHODS:
            # Evidently's KS drifts at p <= threshold, its chi-square and z at p < threshold.
            breached = value <= self.p_value if method == "ks" else value < self.p_value
            return Finding(self.name, self.mode, method, feature, score=value, threshold=self.p_value,
                           breached=bool(breached), p_value=value)
        return Finding(self.name, self.mode, method, feature, score=value, threshold=self.distance_threshold,
                       breached=value >= self.distance_threshold, direction="above", statistic=value)
