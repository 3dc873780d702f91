"""Native two-sample tests per feature: KS for numeric, chi-square on the contingency table for categorical."""

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import stats

from detectors.base import PREDICTION, Detector, DetectorKind, Finding, Window, per_test_alpha
from detectors.registry import register


def ks_test(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: (statistic, p-value)."""
    result = stats.ks_2samp(reference.dropna().to_numpy(float), current.dropna().to_numpy(float))
    return float(result.statistic), float(result.pvalue)


def chi2_test(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Two-sample chi-square test of homogeneity on category counts: (statistic, p-value)."""
    ref_counts = reference.dropna().astype(str).value_counts()
    cur_counts = current.dropna().astype(str).value_counts()
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
    """Drift of the model's own output: chi-square for class labels, KS for regression values."""

    name: ClassVar[str] = "prediction_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.PREDICTION_DRIFT
    p_value: float = Field(default=0.05, gt=0, lt=1)

    def run(self, window: Window) -> list[Finding]:
        test, fn = ("chi2", chi2_test) if window.task == "classification" else ("ks", ks_test)
        statistic, p = fn(window.reference[PREDICTION], window.current[PREDICTION])
        return [Finding(self.name, self.engine, test, "prediction", score=p, threshold=self.p_value,
                        breached=p < self.p_value, statistic=statistic, p_value=p)]
