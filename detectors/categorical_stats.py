"""Two-sample statistics for one categorical feature, from reference and current counts over the same categories."""

import numpy as np
from scipy import stats

from detectors.numeric_stats import jensen_shannon, psi, shares
from detectors.profile import CategoricalProfile, Floats, Ints


def align(reference: CategoricalProfile, categories: tuple[str, ...], counts: Ints) -> tuple[list[str], Ints, Ints]:
    """Both count vectors over the union of categories (sorted), zeros where a side never saw a category."""
    union = sorted(set(reference.categories) | set(categories))
    index = {c: i for i, c in enumerate(union)}
    ref, cur = np.zeros(len(union), dtype=np.int64), np.zeros(len(union), dtype=np.int64)
    ref[[index[c] for c in reference.categories]] = reference.counts
    cur[[index[c] for c in categories]] = counts
    return union, ref, cur


def chi2_homogeneity(ref: Ints, cur: Ints) -> tuple[float, float]:
    """Two-sample chi-square on the 2 x k contingency table, no Yates correction (`chi2_contingency`)."""
    table = np.vstack([ref, cur]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0  # one category on both sides: nothing can differ
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def z_two_proportions(ref: Ints, cur: Ints) -> tuple[float, float]:
    """Pooled two-proportion z-test on the first category's share (binary features): (z, two-sided p)."""
    n1, n2 = float(ref.sum()), float(cur.sum())
    p1, p2 = ref[0] / n1, cur[0] / n2
    pooled = (ref[0] + cur[0]) / (n1 + n2)
    spread = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if spread == 0:
        return 0.0, 1.0
    z = float((p1 - p2) / np.sqrt(spread))
    return z, float(2 * stats.norm.sf(abs(z)))  # sf, not 1 - cdf: keeps tiny p-values exact


def fisher(ref: Ints, cur: Ints) -> tuple[float, float]:
    """Fisher's exact test on the 2 x 2 table of the first category vs the rest: (odds ratio, p)."""
    table = [[int(ref[0]), int(ref.sum() - ref[0])], [int(cur[0]), int(cur.sum() - cur[0])]]
    result = stats.fisher_exact(table)
    return float(result.statistic), float(result.pvalue)


def categorical_psi(ref: Ints, cur: Ints) -> float:
    """PSI over categories, empty categories floored at 1e-4."""
    return psi(ref, cur)


def categorical_js(ref: Ints, cur: Ints) -> float:
    """Jensen-Shannon distance (natural log) between the category frequencies."""
    return jensen_shannon(shares(ref), shares(cur))


def linf(ref: Ints, cur: Ints) -> float:
    """L-infinity distance of the frequencies, each side normalised by its own total (TFDV's comparator)."""
    difference: Floats = shares(ref) - shares(cur)
    return float(np.max(np.abs(difference))) if len(difference) else 0.0
