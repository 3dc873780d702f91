"""Two-sample statistics for one numeric feature, from the profiled (sorted) reference and the sorted current values.

One merge of the two sorted samples gives the pooled order, from which KS, Cramér-von Mises and Wasserstein all
follow in O(n + m) without re-sorting the reference. Formulas follow scipy 1.17 so results agree to rounding:
- KS: `ks_2samp(method="auto")`: the exact distribution when both samples have <= 10000 values (computed by
  scipy itself, cheap at that size), otherwise scipy's 'asymp' p-value `kstwo.sf(D, round(n*m/(n+m)))`, whose
  slow exact-Smirnov branch is evaluated here vectorised (`smirnov_sf`).
- Cramér-von Mises: `cramervonmises_2samp(method="auto")`: exact (scipy) when both samples have <= 20 values,
  otherwise the asymptotic series of Csörgő and Faraway, implemented here.
"""

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from detectors.profile import Floats, Ints, equal_mass_counts, histogram_sorted

KS_EXACT_MAX = 10_000  # scipy's MAX_AUTO_N
CVM_EXACT_MAX = 20
WASSERSTEIN_MIN_NORM = 0.001  # Evidently's floor on std(reference)
PSI_FLOOR = 1e-4  # share given to an empty bin so PSI stays finite


@dataclass(frozen=True)
class Merged:
    """Two sorted samples, merged once (detectors.sorted_merge): for each current value how many reference values
    lie at or below it, KS D and the Wasserstein distance; the pooled order (Cramér-von Mises' ranks) only when
    asked for."""

    n: int
    m: int
    reference: Floats
    current: Floats
    ref_at_or_below: Ints  # for each sorted current value, how many reference values are <= it
    ks_d: float
    wasserstein: float

    @cached_property
    def is_cur(self) -> NDArray[np.bool_]:
        """Whether each position of the pooled sorted sample holds a current value (ties: reference first)."""
        is_cur = np.zeros(self.n + self.m, dtype=np.bool_)
        is_cur[self.ref_at_or_below + np.arange(self.m)] = True
        return is_cur

    @cached_property
    def values(self) -> Floats:
        """The pooled sorted sample."""
        values = np.empty(self.n + self.m)
        values[self.is_cur] = self.current
        values[~self.is_cur] = self.reference
        return values

    def tie_ends(self) -> NDArray[np.intp]:
        """Positions that end a run of equal values: where both empirical CDFs take their value."""
        return np.flatnonzero(np.append(self.values[1:] != self.values[:-1], True))


def merge(reference: Floats, current: Floats) -> Merged:
    """Two sorted samples of finite values, ready for the statistics below (one compiled pass over both)."""
    from detectors.sorted_merge import merge_sorted  # numba loads with the first check, not with the detectors

    at_or_below, d, w = merge_sorted(reference, current)
    return Merged(len(reference), len(current), reference, current, at_or_below, d, w)


def ks_statistic(merged: Merged) -> float:
    """Two-sided KS statistic D = max |F_ref - F_cur| over all data points, as ks_2samp computes it."""
    return min(merged.ks_d, 1.0)


ASYMPTOTIC_EN = 10_000


def ks_pvalue(d: float, n: int, m: int, reference: Floats | None = None, current: Floats | None = None) -> float:
    """scipy's 'auto' p-value: exact for small samples (needs the data), else Smirnov's asymptotic formula."""
    if max(n, m) <= KS_EXACT_MAX and reference is not None and current is not None:
        return float(stats.ks_2samp(reference, current, method="auto").pvalue)
    big, small = sorted([float(n), float(m)], reverse=True)
    en = float(np.round(big * small / (big + small)))
    # scipy's kstwo.sf takes 2 * smirnov(en, d) in this region, an O(en) series costing ~1 s at en = 5e5.
    if en > 140 and d < 0.5 and 1 < en * d < en - 1 and 2.2 <= en * d * d < 370:
        return float(np.clip(2 * smirnov_sf(int(en), d), 0, 1))
    return float(np.clip(stats.kstwo.sf(d, en), 0, 1))


def ks_pvalue_sketched(d: float, n: int, m: int) -> float:
    """The p-value of a D estimated from sketches: above an effective size of ASYMPTOTIC_EN, scipy's 'asymp'
    (Kolmogorov's limit), whose error there is far below the sketch's own while the exact series costs ~25 ms a
    feature at millions of rows; below it, `ks_pvalue`."""
    en = n * m / (n + m)
    if en <= ASYMPTOTIC_EN:
        return ks_pvalue(d, n, m)
    return float(np.clip(special.kolmogorov(np.sqrt(en) * d), 0, 1))


def smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x), the Birnbaum-Tingey series of `scipy.special.smirnov`, summed in log space and vectorised.

    Agrees with scipy to ~1e-9 relative (both are the exact series). Only terms within e^-60 of the largest are
    summed, located on a coarse grid first since the log-terms are smooth and unimodal in j. At a million values
    that still leaves ~n/2 terms (65 ms a column), so beyond SMIRNOV_POINTS of them every h-th term is summed and
    weighted h: on a bump this smooth, spanning more than SMIRNOV_POINTS steps of h, that trapezoid rule and the
    unit-step sum agree to ~1e-11 relative (tests/detectors/test_native_drift.py checks it against every term).
    """
    top = int(np.floor(n * (1 - x)))

    def log_terms(j: Floats) -> Floats:
        with np.errstate(divide="ignore"):
            terms: Floats = (special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)
                             + (n - j) * np.log1p(-x - j / n) + (j - 1) * np.log(x + j / n))
        return terms

    step = max(1, top // 2000)
    coarse = np.arange(0, top + 1, step, dtype=np.float64)
    coarse_terms = log_terms(coarse)
    keep = np.flatnonzero(coarse_terms >= coarse_terms.max() - 60)
    low, high = max(0, int(coarse[keep[0]]) - step), min(top, int(coarse[keep[-1]]) + step)
    h = max(1, (high - low) // SMIRNOV_POINTS)
    terms = log_terms(np.arange(low, high + 1, h, dtype=np.float64))
    return float(x * h * np.exp(special.logsumexp(terms)))


SMIRNOV_POINTS = 20_000


def wasserstein(merged: Merged) -> float:
    """First Wasserstein distance: the area between the two empirical CDFs (scipy's `wasserstein_distance`)."""
    return merged.wasserstein


def wasserstein_normed(merged: Merged, reference_std: float) -> float:
    """Wasserstein distance in units of the reference std, Evidently's way (std floored at 0.001)."""
    return wasserstein(merged) / max(reference_std, WASSERSTEIN_MIN_NORM)


def _midranks(merged: Merged) -> Floats:
    """Pooled ranks with ties given their average rank, as `rankdata(method='average')`."""
    total = merged.n + merged.m
    ends = merged.tie_ends()
    if len(ends) == total:
        return np.arange(1, total + 1, dtype=np.float64)
    starts = np.concatenate([[0], ends[:-1] + 1])
    run = np.repeat(np.arange(len(ends)), ends - starts + 1)
    return ((starts + ends) / 2 + 1)[run]


def cvm_statistic(merged: Merged) -> float:
    """Two-sample Cramér-von Mises T (Anderson 1962), from midranks as scipy computes it."""
    n, m = merged.n, merged.m
    ranks = _midranks(merged)
    u = (n * np.sum((ranks[~merged.is_cur] - np.arange(1, n + 1)) ** 2)
         + m * np.sum((ranks[merged.is_cur] - np.arange(1, m + 1)) ** 2))
    k, total = n * m, n + m
    return float(u / (k * total) - (4 * k - 1) / (6 * total))


def _cdf_cvm_inf(x: float) -> float:
    """Limiting CDF of the one-sample CvM statistic (Csörgő & Faraway 1996, eq. 1.2), summed until terms < 1e-7."""
    total, k = 0.0, 0
    while True:
        y = 4 * k + 1
        q = y**2 / (16 * x)
        term = float(math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (math.pi**1.5 * math.sqrt(x))
                     * math.sqrt(y) * math.exp(-q) * special.kv(0.25, q))
        total += term
        if abs(term) < 1e-7:
            return total
        k += 1


def cvm_pvalue(t: float, n: int, m: int, reference: Floats | None = None, current: Floats | None = None) -> float:
    """scipy's 'auto' p-value: exact for <= 20 values per sample (needs the data), else asymptotic."""
    if max(n, m) <= CVM_EXACT_MAX and reference is not None and current is not None:
        return float(stats.cramervonmises_2samp(reference, current, method="auto").pvalue)
    k, total = n * m, n + m
    expected = (1 + 1 / total) / 6
    variance = (total + 1) * (4 * k * total - 3 * (n**2 + m**2) - 2 * k) / (45 * total**2 * 4 * k)
    normalised = 1 / 6 + (t - expected) / math.sqrt(45 * variance)
    # Below 0.003 the limiting CDF is < 1.3e-18, so scipy returns 1 directly.
    return 1.0 if normalised < 0.003 else max(1.0 - _cdf_cvm_inf(normalised), 0.0)


def shares(counts: NDArray[np.int64] | Floats, floor: float = 0.0) -> Floats:
    """Counts as proportions, empty bins raised to `floor` (0 keeps them empty)."""
    total = float(np.sum(counts))
    p = np.asarray(counts, dtype=np.float64) / total if total else np.zeros(len(counts))
    return np.maximum(p, floor) if floor else p


def psi(reference_counts: NDArray[np.int64] | Floats, current_counts: NDArray[np.int64] | Floats) -> float:
    """Population stability index sum((c - r) * ln(c / r)), empty bins floored at 1e-4."""
    r, c = shares(reference_counts, PSI_FLOOR), shares(current_counts, PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(p: Floats, q: Floats, base: float | None = None) -> float:
    """Jensen-Shannon distance (square root of the divergence), scipy's `distance.jensenshannon` formula."""
    p, q = p / np.sum(p), q / np.sum(q)
    middle = (p + q) / 2
    divergence = (np.sum(special.rel_entr(p, middle)) + np.sum(special.rel_entr(q, middle))) / 2
    if base is not None:
        divergence /= np.log(base)
    return float(np.sqrt(max(divergence, 0.0)))


def binned_counts(current_sorted: Floats, interior_edges: Floats) -> Ints:
    """Current counts in the reference's equal-mass bins."""
    return equal_mass_counts(current_sorted, interior_edges)


def _is_point(edges: Floats) -> bool:
    return len(edges) == 2 and bool(edges[0] == edges[1])


def _aligned(edges: Floats, counts: Ints, boundaries: Floats, points: list[float]) -> Floats:
    """Masses over the union boundaries, then over the union of point masses."""
    if _is_point(edges):
        spread = np.zeros(max(len(boundaries) - 1, 0))
        return np.concatenate([spread, [float(counts.sum()) if x == edges[0] else 0.0 for x in points]])
    # Uniform mass within each bucket (TFDV's assumption) is linear interpolation of the cumulative count.
    cumulative = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)])
    return np.concatenate([np.diff(np.interp(boundaries, edges, cumulative)), np.zeros(len(points))])


def tfdv_jsd(ref_edges: Floats, ref_counts: Ints, cur_edges: Floats, cur_counts: Ints) -> float:
    """TFDV's approximate Jensen-Shannon divergence (base 2, capped at 1) of two equi-width histograms.

    As in TFDV's `metrics.cc`: buckets are re-cut at the union of both histograms' boundaries assuming uniform
    mass inside a bucket; a zero-width histogram (all values equal) stays a separate point-mass bucket.
    """
    sides = ((ref_edges, ref_counts), (cur_edges, cur_counts))
    spans = [edges for edges, _ in sides if not _is_point(edges)]
    boundaries = np.unique(np.concatenate(spans)) if spans else np.zeros(0)
    points = sorted({float(edges[0]) for edges, _ in sides if _is_point(edges)})
    ref, cur = (_aligned(edges, counts, boundaries, points) for edges, counts in sides)
    p, q = ref / ref.sum(), cur / cur.sum()
    middle = (p + q) / 2
    divergence = (np.sum(special.rel_entr(p, middle)) + np.sum(special.rel_entr(q, middle))) / (2 * np.log(2))
    return float(min(divergence, 1.0))


def current_histogram(current_sorted: Floats, edges: Floats) -> Ints:
    """Counts of the current values in given equi-width edges (a point histogram keeps one bucket)."""
    if len(edges) == 2 and edges[0] == edges[1]:
        return np.array([len(current_sorted)], dtype=np.int64)
    return histogram_sorted(current_sorted, edges)
