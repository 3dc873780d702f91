"""One pass over two sorted samples: the KS statistic, the Wasserstein distance and each current value's count of
reference values at or below it, compiled by numba.

numpy needs a dozen whole-array passes (and gathers into the reference) for what one merge loop does in about
the time of a sort: 7 against 34 ms for a million values on each side. The loop has no data-dependent branch
(the merge's choice is a select), so interleaved samples cost no more than tied ones.
"""

from typing import Any

import numpy as np

from detectors.compiled import compiled
from detectors.profile import Floats, Ints

_SIGNATURE = "Tuple((int64[::1], float64, float64))(float64[::1], float64[::1])"


@compiled("the drift merge", _SIGNATURE)  # about 1 s to compile, once per machine
def _merge(reference: Any, current: Any) -> Any:  # pragma: no cover (compiled; its callers are tested)
    n, m = len(reference), len(current)
    # at_or_below[j] is rewritten while reference values go by and final once current[j] is taken (ties take
    # the reference first, as searchsorted(side="right") counts); one slot more for writes after the last.
    at_or_below = np.zeros(m + 1, dtype=np.int64)
    d = 0.0
    w = 0.0
    i = 0
    j = 0
    a, b = reference[0], current[0]
    for _ in range(n + m - 1):  # the last value closes a run where both CDFs are 1: it adds nothing
        take_reference = a <= b  # an exhausted side reads as +inf (finite values only: merge_sorted checks)
        value = a if take_reference else b
        i += take_reference
        at_or_below[min(j, m)] = i  # indices clamped: input against the contract reads as nonsense, writes nowhere
        j += 1 - take_reference
        a = reference[min(i, n - 1)] if i < n else np.inf
        b = current[min(j, m - 1)] if j < m else np.inf
        following = a if a < b else b
        gap = following - value
        # Both empirical CDFs as scipy's ks_2samp and wasserstein_distance compute them: counts over sizes.
        difference = abs(i / n - j / m)
        w += difference * gap  # the area up to the next value; zero inside a run of ties
        d = difference if (gap != 0.0) & (difference > d) else d  # D is read where a run of equal values ends
    at_or_below[min(j, m)] = i  # the value left over, if a current one: every reference value is at or below it
    return at_or_below[:m], d, w


def merge_sorted(reference: Floats, current: Floats) -> tuple[Ints, float, float]:
    """(for each current value the number of reference values <= it, KS D, Wasserstein distance) of two sorted
    samples of finite values; D and the distance are NaN when either sample is empty."""
    reference = np.ascontiguousarray(reference, dtype=np.float64)
    current = np.ascontiguousarray(current, dtype=np.float64)
    if len(reference) == 0 or len(current) == 0:
        return np.zeros(len(current), dtype=np.int64), float("nan"), float("nan")
    # Sorted, a sample is finite if its ends are (numpy sorts NaN last).
    if not np.isfinite([reference[0], reference[-1], current[0], current[-1]]).all():
        raise ValueError("merge_sorted takes sorted finite values")
    at_or_below, d, w = _merge(reference, current)
    return at_or_below, float(d), float(w)
