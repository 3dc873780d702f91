"""Native two-sample tests per feature: KS for numeric, chi-square on the contingency table for categorical."""

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats

from detectors import numeric_stats as num
from detectors.base import (
    PREDICTION,
    PROBA_PREFIX,
    Detector,
    DetectorKind,
    Finding,
    InsufficientData,
    Window,
    per_test_alpha,
)
from detectors.measured import DEFAULT_THRESHOLDS
from detectors.profile import category_counts
from detectors.registry import register
from detectors.sketches import compare
from detectors.sketches import drift as sketched
from detectors.sketches.profile import CategoryCounts, NumericSketch, Profile


def ks_test(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: (statistic, p-value)."""
    result = stats.ks_2samp(reference.dropna().to_numpy(float), current.dropna().to_numpy(float))
    return float(result.statistic), float(result.pvalue)


def chi2_test(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Two-sample chi-square test of homogeneity on category counts: (statistic, p-value)."""
    ref_counts, cur_counts = (pd.Series(counts, index=pd.Index(labels, dtype=object))
                              for labels, counts in (category_counts(reference), category_counts(current)))
    categories = ref_counts.index.union(cur_counts.index)
    table = np.vstack([ref_counts.reindex(categories, fill_value=0), cur_counts.reindex(categories, fill_value=0)])
    if table.shape[1] < 2:
        return 0.0, 1.0  # one category on both sides: nothing can differ
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


@register
class StatDrift(Detector):
    """KS (numeric) and chi-square (categorical) per feature, p-value against a threshold."""

    name: ClassVar[str] = "stat_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.INPUT_DRIFT
    p_value: float = Field(default=0.05, gt=0, lt=1, description="Family-wise significance level")
    correction: Literal["bonferroni", "none"] = "bonferroni"

    def run(self, window: Window) -> list[Finding]:
        alpha = per_test_alpha(self.p_value, len(window.schema), self.correction)
        findings = []
        for column, kind in window.schema.items():
            test, fn = ("ks", ks_test) if kind == "numeric" else ("chi2", chi2_test)
            statistic, p = fn(window.reference[column], window.current[column])
            findings.append(Finding(self.name, self.engine, test, column, score=p, threshold=alpha,
                                    breached=p < alpha, statistic=statistic, p_value=p))
        return findings


@register
class PredictionDrift(Detector):
    """Drift of the model's own output: chi-square for class labels, KS for regression values, and optionally KS
    on each class probability. In profile mode the same tests run on the merged profiles (exact class counts,
    KLL sketches), a KS rejection also needing D >= min_d."""

    name: ClassVar[str] = "prediction_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.PREDICTION_DRIFT
    profiles: ClassVar[bool] = True
    p_value: float = Field(default=0.05, gt=0, lt=1)
    probabilities: bool = Field(default=False, description="Also KS-test each class probability (feature "
                                "'probability:<class>') against the reference's")
    min_d: float = Field(default=0.01, ge=0, le=1, description=(
        "Profile mode (merged sketches, millions of rows): a KS rejection also needs D >= this"))

    def run(self, window: Window) -> list[Finding]:
        if window.sketched is not None:
            return self.run_sketched(*window.sketched, window.task)
        test, fn = ("chi2", chi2_test) if window.task == "classification" else ("ks", ks_test)
        statistic, p = fn(window.reference[PREDICTION], window.current[PREDICTION])
        findings = [self._tested(test, "prediction", statistic, p)]
        if self.probabilities:
            for column in window.proba_columns:
                if column in window.reference.columns:
                    statistic, p = ks_test(window.reference[column], window.current[column])
                    findings.append(self._tested("ks", _probability(column), statistic, p))
        return findings

    def run_sketched(self, reference: Profile, current: Profile, task: str) -> list[Finding]:
        """The same tests on two merged profiles."""
        findings: list[Finding] = []
        if task == "classification":
            if PREDICTION not in reference.categorical or PREDICTION not in current.categorical:
                raise InsufficientData("the profiles hold no class counts of the prediction")
            findings.append(self._classes(reference.categorical[PREDICTION], current.categorical[PREDICTION]))
        else:
            if PREDICTION not in reference.numeric or PREDICTION not in current.numeric:
                raise InsufficientData("the profiles hold no sketch of the prediction")
            findings += self._sketch_ks("prediction", reference.numeric[PREDICTION], current.numeric[PREDICTION])
        if self.probabilities:
            for column, sketch in current.numeric.items():
                if column.startswith(PROBA_PREFIX) and column in reference.numeric:
                    findings += self._sketch_ks(_probability(column), reference.numeric[column], sketch)
        return sketched.settle(findings, current.k, self.min_d)

    def _tested(self, test: str, feature: str, statistic: float, p: float, **extra: float) -> Finding:
        return Finding(self.name, self.engine, test, feature, score=p, threshold=self.p_value,
                       breached=p < self.p_value, statistic=statistic, p_value=p, extra=dict(extra))

    def _sketch_ks(self, feature: str, reference: NumericSketch, current: NumericSketch) -> list[Finding]:
        n, m = reference.count, current.count
        if n < 2 or m < 2:
            return []
        ks = compare.ks(reference, current)
        return [self._tested("ks", feature, ks.d, num.ks_pvalue_sketched(ks.d, n, m), reference_n=float(n),
                             current_n=float(m), error_bound=ks.bound)]

    def _classes(self, reference: CategoryCounts, current: CategoryCounts) -> Finding:
        counts = compare.align(reference, current)
        sizes = {"reference_n": float(counts.reference.sum()), "current_n": float(counts.current.sum()),
                 "error_bound": 0.0}
        if not counts.exact:  # past the category cap: no exact counts for chi-square, the largest share change
            linf = compare.linf(counts)
            threshold = DEFAULT_THRESHOLDS["linf"]
            return Finding(self.name, self.engine, "linf", "prediction", score=linf, threshold=threshold,
                           breached=linf >= threshold, direction="above", statistic=linf,
                           extra=sizes | {"capped": 1.0})
        if len(counts.levels) < 2:
            return self._tested("chi2", "prediction", 0.0, 1.0, **sizes)  # one class on both sides
        statistic, p = compare.chi2(counts)
        return self._tested("chi2", "prediction", statistic, p, **sizes)


def _probability(column: str) -> str:
    return f"probability:{column.removeprefix(PROBA_PREFIX)}"
