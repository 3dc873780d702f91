"""Drift statistics from two profiles instead of two columns of rows, each with the error the sketches allow.

KS D is read off both sketches' CDFs on a grid of their quantiles; Wasserstein from their quantile functions;
PSI and Jensen-Shannon from masses on the reference's decile edges; chi-square from exact category counts. The
error bound of D is the two sketches' rank errors plus the grid's step: a verdict within it of a cut-off is
"near threshold".
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors import categorical_stats as cat
from detectors import numeric_stats as num
from detectors.profile import QUANTILE_BINS
from detectors.sketches.profile import CategoryCounts, NumericSketch

Floats = NDArray[np.float64]
GRID = 4096  # quantile points per sketch at which the two CDFs are compared
WASSERSTEIN_POINTS = 2048


@dataclass(frozen=True)
class SketchKS:
    """KS D between two sketched columns and how far it can be from the exact D."""

    d: float
    bound: float


def ks(reference: NumericSketch, current: NumericSketch) -> SketchKS:
    """The largest CDF gap, evaluated at both sketches' quantiles (where either step function jumps)."""
    ref, cur = reference.kll(), current.kll()
    ranks = np.linspace(0.0, 1.0, GRID + 1)
    points = np.unique(np.concatenate([np.asarray(ref.get_quantiles(ranks)), np.asarray(cur.get_quantiles(ranks))]))
    # get_cdf's last entry is 1 (past the maximum); right-closed (inclusive) CDFs, as the empirical CDF is.
    gap = np.abs(np.asarray(ref.get_cdf(points, True))[:-1] - np.asarray(cur.get_cdf(points, True))[:-1])
    bound = _rank_error(reference) + _rank_error(current) + 2.0 / GRID
    return SketchKS(float(gap.max(initial=0.0)), bound)


def wasserstein_normed(reference: NumericSketch, current: NumericSketch) -> float:
    """Wasserstein-1 from the two quantile functions, in units of the reference std (floored as the exact one)."""
    ranks = (np.arange(WASSERSTEIN_POINTS) + 0.5) / WASSERSTEIN_POINTS
    gap = np.abs(np.asarray(reference.kll().get_quantiles(ranks)) - np.asarray(current.kll().get_quantiles(ranks)))
    return float(gap.mean()) / max(reference.std, num.WASSERSTEIN_MIN_NORM)


def decile_masses(reference: NumericSketch, current: NumericSketch) -> tuple[Floats, Floats]:
    """Reference and current counts in the reference's equal-mass bins, right-open like the exact profile's."""
    ref, cur = reference.kll(), current.kll()
    edges = np.unique(np.asarray(ref.get_quantiles(np.arange(1, QUANTILE_BINS) / QUANTILE_BINS)))
    ref_mass = np.asarray(ref.get_pmf(edges)) * reference.count
    cur_mass = np.asarray(cur.get_pmf(edges)) * current.count
    return ref_mass, cur_mass


def psi(reference: NumericSketch, current: NumericSketch) -> float:
    ref, cur = decile_masses(reference, current)
    return num.psi(ref, cur)


def jensen_shannon(reference: NumericSketch, current: NumericSketch) -> float:
    ref, cur = decile_masses(reference, current)
    return num.jensen_shannon(num.shares(ref), num.shares(cur))


@dataclass(frozen=True)
class AlignedCounts:
    """Both sides' counts over the union of their categories; `exact` is False once either side was capped."""

    levels: list[str]
    reference: NDArray[np.int64]
    current: NDArray[np.int64]
    exact: bool


def align(reference: CategoryCounts, current: CategoryCounts) -> AlignedCounts:
    """Counts side by side. Past the cap a category may sit in one side's OTHER and the other's counts, so only
    distances on the kept categories mean something then."""
    levels = sorted(set(reference.counts) | set(current.counts))
    ref = np.array([reference.counts.get(c, 0) for c in levels], dtype=np.int64)
    cur = np.array([current.counts.get(c, 0) for c in levels], dtype=np.int64)
    return AlignedCounts(levels, ref, cur, exact=not (reference.capped or current.capped))


def chi2(counts: AlignedCounts) -> tuple[float, float]:
    """Chi-square homogeneity on exact counts."""
    assert counts.exact, "chi-square needs exact counts"
    return cat.chi2_homogeneity(counts.reference, counts.current)


def linf(counts: AlignedCounts) -> float:
    return cat.linf(counts.reference, counts.current)


def categorical_js(counts: AlignedCounts) -> float:
    return cat.categorical_js(counts.reference, counts.current)


def _rank_error(sketch: NumericSketch) -> float:
    """Zero while the sketch still holds every value (a KLL sketch below its capacity is exact)."""
    kll = sketch.kll()
    return float(kll.normalized_rank_error(False)) if kll.is_estimation_mode() else 0.0

