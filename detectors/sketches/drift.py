"""Profile mode of the native drift engine: the same tests and verdicts, read from two merged profiles.

At the sizes where profiles pay (millions of rows per side) a KS p-value rejects shifts far below what the
sketches can resolve, so a rejection also needs D >= `min_d`; a verdict that the error bound could flip is
marked "near threshold". Above the category cap, chi-square has no exact counts: L-infinity and Jensen-Shannon
replace it and the finding says why.
"""

from collections.abc import Collection
from dataclasses import replace

from detectors import categorical_stats as cat
from detectors import numeric_stats as num
from detectors.base import Finding
from detectors.measured import CategoricalTest, Measured, NumericTest
from detectors.sketches import compare
from detectors.sketches.profile import CategoryCounts, NumericSketch, Profile

CAPPED_NOTE = "categories beyond the cap: chi-square needs exact counts, so L-infinity and Jensen-Shannon replace it"


def measure_numeric(feature: str, reference: NumericSketch, current: NumericSketch,
                    tests: tuple[NumericTest, ...]) -> list[Measured]:
    n, m = reference.count, current.count
    if n < 2 or m < 2:
        return []
    effect = compare.wasserstein_normed(reference, current)
    ks = compare.ks(reference, current)
    sizes = {"reference_n": float(n), "current_n": float(m), "error_bound": ks.bound, "ks_d": ks.d}
    out: list[Measured] = []
    for test in tests:
        p: float | None = None
        if test == "ks":
            statistic, p = ks.d, num.ks_pvalue_sketched(ks.d, n, m)
        elif test == "wasserstein":
            statistic = effect
        elif test == "psi":
            statistic = compare.psi(reference, current)
        elif test == "jensen_shannon":
            statistic = compare.jensen_shannon(reference, current)
        else:  # cvm and tfdv_jsd need the rows or both histograms; KS answers the same question from sketches
            continue
        out.append(Measured(feature, "numeric", test, statistic, p, effect, dict(sizes)))
    return out


def measure_categorical(feature: str, reference: CategoryCounts, current: CategoryCounts,
                        tests: tuple[CategoricalTest, ...]) -> list[Measured]:
    if reference.count == 0 or current.count == 0:
        return []
    counts = compare.align(reference, current)
    effect = compare.linf(counts)
    sizes = {"reference_n": float(counts.reference.sum()), "current_n": float(counts.current.sum()),
             "categories": float(len(counts.levels)), "error_bound": 0.0}
    wanted = tests if counts.exact else ("linf", "jensen_shannon")
    out: list[Measured] = []
    for test in dict.fromkeys("chi2" if t in ("z", "fisher") else t for t in wanted):
        p: float | None = None
        if test == "chi2":
            statistic, p = compare.chi2(counts)
        elif test == "jensen_shannon":
            statistic = compare.categorical_js(counts)
        elif test == "linf":
            statistic = effect
        else:  # psi on categories: from the same exact counts
            statistic = cat.categorical_psi(counts.reference, counts.current)
        extra = dict(sizes) | ({} if counts.exact else {"capped": 1.0})
        out.append(Measured(feature, "categorical", test, statistic, p, effect, extra))
    return out


def measure(reference: Profile, current: Profile, numeric_tests: tuple[NumericTest, ...],
            categorical_tests: tuple[CategoricalTest, ...], features: Collection[str] | None = None) -> list[Measured]:
    """Every requested statistic for every feature both profiles hold (of `features`, when given: a window's
    profiles also hold the prediction and class probabilities)."""
    wanted = set(features) if features is not None else None
    out = [m for name, ref in reference.numeric.items() if name in current.numeric and (not wanted or name in wanted)
           for m in measure_numeric(name, ref, current.numeric[name], numeric_tests)]
    out += [m for name, ref in reference.categorical.items()
            if name in current.categorical and (not wanted or name in wanted)
            for m in measure_categorical(name, ref, current.categorical[name], categorical_tests)]
    return out


def settle(findings: list[Finding], k: int, min_d: float) -> list[Finding]:
    """Sketch-mode verdicts: KS also needs D >= min_d; say which verdicts the error bound could flip."""
    out = []
    for f in findings:
        bound = f.extra.get("error_bound", 0.0)
        notes = [CAPPED_NOTE] if f.extra.get("capped") else []
        breached, near = f.breached, False
        if f.test == "ks" and f.statistic is not None:
            breached = breached and f.statistic >= min_d
            low, high = max(f.statistic - bound, 0.0), f.statistic + bound
            n, m = int(f.extra["reference_n"]), int(f.extra["current_n"])
            near = _ks_rejects(high, n, m, f.threshold, min_d) != _ks_rejects(low, n, m, f.threshold, min_d)
            if near:
                notes.append(f"near threshold: D {f.statistic:.4f} +- {bound:.4f} could fall on either side")
        out.append(replace(f, breached=breached, mode=sketch_mode(k), note="; ".join(notes),
                           extra=f.extra | {"min_d": min_d, "near_threshold": float(near)}))
    return out


def sketch_mode(k: int) -> str:
    """The mode a finding computed from profiles records."""
    return f"sketch k={k}"


def counted(findings: list[Finding], k: int) -> list[Finding]:
    """Findings read off a profile's exact counts (missing, non-finite, rows): sketch mode, no error."""
    return [replace(f, mode=sketch_mode(k), extra=f.extra | {"error_bound": 0.0}) for f in findings]


def _ks_rejects(d: float, n: int, m: int, threshold: float, min_d: float) -> bool:
    return d >= min_d and num.ks_pvalue_sketched(d, n, m) < threshold
