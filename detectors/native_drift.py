"""The native drift engine: numpy/scipy tests per feature against a reference profile, with FDR or FWER control.

The reference is profiled once (`detectors.profile`); a check sorts each current column once and reads the rest
from the profile. Columns run in a small thread pool: numpy's sort and the compiled merge release the GIL.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, PositiveFloat

from detectors import categorical_stats as cat
from detectors import numeric_stats as num
from detectors.base import Detector, DetectorKind, Finding, InsufficientData, Window
from detectors.measured import DEFAULT_THRESHOLDS, CategoricalTest, DistanceTest, Measured, NumericTest
from detectors.multiple_testing import Correction, decide
from detectors.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    category_counts,
    equi_width_edges,
    finite_values,
    profile_reference,
)
from detectors.registry import register
from detectors.sketches import drift as sketched

log = logging.getLogger(__name__)

def measure_numeric(feature: str, profile: NumericProfile, column: pd.Series,
                    tests: tuple[NumericTest, ...]) -> list[Measured]:
    """Run the requested numeric tests on one current column."""
    current = finite_values(column)  # a copy (boolean indexing): sorted in place, no second million-value array
    current.sort()
    n, m = profile.count, len(current)
    if m < 2 or n < 2:
        log.info("native_drift: %s has %d reference and %d current finite values; skipped", feature, n, m)
        return []
    exact_ref = profile.values if profile.exact else None
    merged = num.merge(profile.values, current) if {"ks", "cvm", "wasserstein"} & set(tests) else None
    effect = num.wasserstein_normed(merged, profile.std) if merged is not None else float("nan")
    sizes = {"reference_n": float(n), "current_n": float(m)}
    out: list[Measured] = []
    for test in tests:
        statistic: float
        p: float | None = None
        if test == "ks":
            assert merged is not None
            statistic = num.ks_statistic(merged)
            p = num.ks_pvalue(statistic, n, m, exact_ref, current)
        elif test == "cvm":
            assert merged is not None
            statistic = num.cvm_statistic(merged)
            p = num.cvm_pvalue(statistic, n, m, exact_ref, current)
        elif test == "wasserstein":
            statistic = effect
        elif test == "psi":
            statistic = num.psi(profile.bin_counts, num.binned_counts(current, profile.bin_edges))
        elif test == "jensen_shannon":
            statistic = num.jensen_shannon(num.shares(profile.bin_counts),
                                           num.shares(num.binned_counts(current, profile.bin_edges)))
        else:  # tfdv_jsd: each side keeps its own equi-width histogram, as TFDV's statistics do
            edges = equi_width_edges(current)
            statistic = num.tfdv_jsd(profile.hist_edges, profile.hist_counts, edges,
                                     num.current_histogram(current, edges))
        out.append(Measured(feature, "numeric", test, statistic, p, effect, dict(sizes)))
    return out


def measure_categorical(feature: str, profile: CategoricalProfile, column: pd.Series,
                        tests: tuple[CategoricalTest, ...]) -> list[Measured]:
    """Run the requested categorical tests on one current column; z and Fisher fall back to chi2 beyond 2 levels."""
    categories, counts = category_counts(column)
    if counts.sum() == 0 or profile.count == 0:
        log.info("native_drift: %s has no values on one side; skipped", feature)
        return []
    levels, ref, cur = cat.align(profile, categories, counts)
    effect = cat.linf(ref, cur)
    sizes = {"reference_n": float(ref.sum()), "current_n": float(cur.sum()), "categories": float(len(levels))}
    out: list[Measured] = []
    binary = len(levels) == 2
    for test in dict.fromkeys("chi2" if t in ("z", "fisher") and not binary else t for t in tests):
        p: float | None = None
        if test == "chi2":
            statistic, p = cat.chi2_homogeneity(ref, cur)
        elif test == "z":
            statistic, p = cat.z_two_proportions(ref, cur)
        elif test == "fisher":
            statistic, p = cat.fisher(ref, cur)
        elif test == "psi":
            statistic = cat.categorical_psi(ref, cur)
        elif test == "jensen_shannon":
            statistic = cat.categorical_js(ref, cur)
        else:
            statistic = effect
        out.append(Measured(feature, "categorical", test, statistic, p, effect, dict(sizes)))
    return out


@register
class NativeDrift(Detector):
    """Per-feature drift tests on the native engine, p-values corrected across features, with an effect floor."""

    name: ClassVar[str] = "native_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.INPUT_DRIFT
    engine: ClassVar[str] = "native"
    profiles: ClassVar[bool] = True
    numeric_tests: tuple[NumericTest, ...] = Field(default=("ks",), min_length=1)
    categorical_tests: tuple[CategoricalTest, ...] = Field(default=("chi2",), min_length=1)
    p_value: float = Field(default=0.05, gt=0, lt=1, description="Family level: FDR for bh, FWER for bonferroni")
    correction: Correction = "bh"
    thresholds: dict[DistanceTest, PositiveFloat] = Field(
        default_factory=dict, description="Distance tests breach at or above these (defaults: DEFAULT_THRESHOLDS)")
    min_effect_numeric: float = Field(
        default=0.02, ge=0, description="A KS/CvM rejection counts only if Wasserstein/std(reference) >= this")
    min_effect_categorical: float = Field(
        default=0.01, ge=0, description="A chi2/z/Fisher rejection counts only if max |share change| >= this")
    min_rows: int = Field(default=30, gt=0, description="Fewer current rows: insufficient data")
    workers: int = Field(default=2, ge=1, le=32, description="Threads across columns")

    min_d: float = Field(default=0.01, ge=0, le=1, description=(
        "Profile mode (merged sketches, millions of rows): a KS rejection also needs D >= this"))

    def run(self, window: Window) -> list[Finding]:
        """Check the window's current rows against its stored profile, or profile the reference now; in profile
        mode, compare the two merged profiles instead."""
        if window.sketched is not None:
            reference, current = window.sketched
            if current.rows < self.min_rows:
                raise InsufficientData(f"{current.rows} current rows, need {self.min_rows}")
            measured = sketched.measure(reference, current, self.numeric_tests, self.categorical_tests,
                                        features=window.schema)
            return sketched.settle(self.judge(measured), current.k, self.min_d)
        profile = window.profile or profile_reference(window.reference, window.schema)
        return self.check(profile, window.current)

    def check(self, profile: ReferenceProfile, current: pd.DataFrame) -> list[Finding]:
        """Check current rows against a reference profile."""
        if len(current) < self.min_rows:
            raise InsufficientData(f"{len(current)} current rows, need {self.min_rows}")
        measured = self.measure(profile, current)
        return self.judge(measured)

    def measure(self, profile: ReferenceProfile, current: pd.DataFrame) -> list[Measured]:
        """Every requested statistic for every profiled feature, columns in parallel."""
        jobs: list[Callable[[], list[Measured]]] = [
            partial(measure_numeric, name, p, current[name], self.numeric_tests) for name, p in profile.numeric.items()]
        jobs += [partial(measure_categorical, name, c, current[name], self.categorical_tests)
                 for name, c in profile.categorical.items()]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return [m for batch in pool.map(lambda job: job(), jobs) for m in batch]

    def judge(self, measured: list[Measured]) -> list[Finding]:
        """Verdicts: corrected p-values plus effect floor for tests, fixed thresholds for distances."""
        tested = [m for m in measured if m.p_value is not None]
        verdicts = decide(np.array([m.p_value for m in tested], dtype=np.float64), self.p_value, self.correction)
        findings = []
        for i, m in enumerate(tested):
            floor = self.min_effect_numeric if m.kind == "numeric" else self.min_effect_categorical
            big_enough = not floor or bool(m.effect >= floor)
            assert m.p_value is not None
            extra = m.extra | {"effect": m.effect, "min_effect": floor, "adjusted_p": float(verdicts.adjusted[i])}
            findings.append(Finding(self.name, self.engine, m.test, m.feature, score=m.p_value,
                                    threshold=float(verdicts.thresholds[i]),
                                    breached=bool(verdicts.rejected[i]) and big_enough,
                                    statistic=m.statistic, p_value=m.p_value, extra=extra))
        for m in measured:
            if m.p_value is None:
                threshold = float(self.thresholds.get(m.test, DEFAULT_THRESHOLDS[m.test]))  # type: ignore[call-overload]
                findings.append(Finding(self.name, self.engine, m.test, m.feature, score=m.statistic,
                                        threshold=threshold, breached=m.statistic >= threshold, direction="above",
                                        statistic=m.statistic, extra=m.extra))
        return findings
