"""Per-feature verdicts for a family of p-values: Benjamini-Hochberg (FDR), Bonferroni (FWER) or none."""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Correction = Literal["bh", "bonferroni", "none"]


@dataclass(frozen=True)
class Verdicts:
    """For each p-value: rejected or not, the p-value threshold it faced, and its adjusted p-value."""

    rejected: NDArray[np.bool_]
    thresholds: NDArray[np.float64]
    adjusted: NDArray[np.float64]


def bh_adjusted(p_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values), as `scipy.stats.false_discovery_control`."""
    k = len(p_values)
    order = np.argsort(p_values)
    scaled = p_values[order] * k / np.arange(1, k + 1)
    # Step-up: each q-value is the smallest scaled p-value at or above its rank.
    adjusted = np.empty(k)
    adjusted[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return np.clip(adjusted, 0, 1)


def decide(p_values: NDArray[np.float64], alpha: float, correction: Correction) -> Verdicts:
    """Reject the hypotheses the correction allows at family level `alpha`."""
    k = len(p_values)
    if k == 0:
        return Verdicts(np.zeros(0, dtype=np.bool_), np.zeros(0), np.zeros(0))
    if correction == "none":
        return Verdicts(p_values < alpha, np.full(k, alpha), p_values.copy())
    if correction == "bonferroni":
        return Verdicts(p_values < alpha / k, np.full(k, alpha / k), np.minimum(p_values * k, 1.0))
    adjusted = bh_adjusted(p_values)
    rejected = adjusted <= alpha
    # The BH cut-off i*alpha/k for the largest rejected rank i; alpha/k (the first step) when nothing is rejected.
    # At least the largest rejected p-value: p*k/i <= alpha and p <= alpha*i/k can round apart by an ulp (p = alpha,
    # i = k = 3), and the recorded cut-off must explain every verdict. Every p-value not rejected lies above both.
    rejections = int(rejected.sum())
    cutoff = alpha * max(rejections, 1) / k
    if rejections:
        cutoff = max(cutoff, float(p_values[rejected].max()))
    return Verdicts(rejected, np.full(k, cutoff), adjusted)
