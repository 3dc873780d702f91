"""Does a shifted numeric feature match its reference under a simple affine map (a unit or definition change)?

serving ≈ scale × reference + offset for a map from a short list: powers of ten (percent and fraction, thousands),
seconds, milliseconds, minutes and hours, Celsius, Fahrenheit and Kelvin, and a constant offset large enough that
no season explains it. Each candidate is undone on the serving values and compared with the reference by a
two-sample KS test; the best p-value wins.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import ks_2samp

from detectors import numeric_stats as num

Floats = NDArray[np.float64]
MAX_VALUES = 3000  # evenly spaced order statistics per side: the test stays fast and its power ample
MIN_VALUES = 30
MIN_OFFSET_STDS = 3.0  # a bare offset counts only this far out: a seasonal shift moves by a fraction of this


@dataclass(frozen=True)
class UnitMap:
    """serving = scale × reference + offset, and what it usually means."""

    scale: float
    offset: float
    meaning: str

    def undo(self, serving: Floats) -> Floats:
        """Serving values brought back to the reference's unit."""
        return (serving - self.offset) / self.scale


_NAMED = {100.0: "fraction → percent, or a unit 100× smaller", 0.01: "percent → fraction, or a unit 100× larger",
          1000.0: "seconds → milliseconds",
          0.001: "milliseconds → seconds", 60.0: "minutes → seconds", 1 / 60: "seconds → minutes",
          60_000.0: "minutes → milliseconds", 1 / 60_000: "milliseconds → minutes", 3600.0: "hours → seconds",
          1 / 3600: "seconds → hours"}
MAPS: tuple[UnitMap, ...] = (
    *(UnitMap(scale, 0.0, f"×{scale:.6g} ({meaning})") for scale, meaning in _NAMED.items()),
    *(UnitMap(10.0 ** k, 0.0, f"×10^{k}") for k in (-6, -4, -1, 1, 4, 6)),
    UnitMap(1.8, 32.0, "Celsius → Fahrenheit (×1.8 + 32)"),
    UnitMap(5 / 9, -32 * 5 / 9, "Fahrenheit → Celsius ((x − 32) × 5/9)"),
    UnitMap(1.0, 273.15, "Celsius → Kelvin (+273.15)"), UnitMap(1.0, -273.15, "Kelvin → Celsius (−273.15)"),
)


@dataclass(frozen=True)
class UnitFit:
    """The best map and how well the serving values fit the reference before and after it."""

    unit_map: UnitMap
    p_before: float
    p_after: float

    def describe(self) -> str:
        """'×1000 (seconds → milliseconds)', or 'shifted by a constant +12.5'."""
        return self.unit_map.meaning


def thinned(values: Floats) -> Floats:
    """At most MAX_VALUES evenly spaced order statistics of the values. A reference profile's values come
    sorted (a million of them): checking costs a pass, sorting them again twenty features times did not."""
    ordered = values if len(values) < 2 or bool(np.all(values[1:] >= values[:-1])) else np.sort(values)
    if len(ordered) <= MAX_VALUES:
        return ordered
    return ordered[np.linspace(0, len(ordered) - 1, MAX_VALUES).astype(np.int64)]


def best_fit(reference: Floats, serving: Floats) -> UnitFit | None:
    """The map under which the serving values look most like the reference (None: too few values)."""
    ref, cur = thinned(reference[np.isfinite(reference)]), thinned(serving[np.isfinite(serving)])
    if len(ref) < MIN_VALUES or len(cur) < MIN_VALUES:
        return None
    before = float(ks_2samp(ref, cur).pvalue)
    candidates = list(MAPS)
    offset = float(np.median(cur) - np.median(ref))
    spread = float(np.std(ref))
    if spread > 0 and abs(offset) >= MIN_OFFSET_STDS * spread:
        candidates.append(UnitMap(1.0, offset, f"shifted by a constant {offset:+.4g}"))
    # The same n on every side: the highest p is the smallest KS D, so one test is run, on the winner (the first
    # of equals, as max() over the p-values picked). Every map is increasing: undoing it keeps `cur` sorted.
    distances = [num.ks_statistic(num.merge(ref, m.undo(cur))) for m in candidates]
    unit_map = candidates[int(np.argmin(distances))]
    return UnitFit(unit_map, before, float(ks_2samp(ref, unit_map.undo(cur)).pvalue))
