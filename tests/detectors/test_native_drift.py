"""The native engine against scipy on random data (hypothesis), and its verdicts on known shifts."""


import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import special, stats
from scipy.spatial import distance

from detectors import categorical_stats as cat
from detectors import numeric_stats as num
from detectors import registry
from detectors.base import FeatureType, Window
from detectors.multiple_testing import bh_adjusted, decide
from detectors.native_drift import NativeDrift
from detectors.numeric_stats import smirnov_sf
from detectors.profile import ReferenceProfile, profile_numeric, profile_reference

STAT = 1e-9  # relative tolerance on statistics
PVAL = 1e-6  # relative tolerance on p-values computed the same way (both exact or both asymptotic)
# Cramér-von Mises' asymptotic p-value is 1 - F(t), on both sides: where F(t) is within a few ulps of 1 the two
# round apart by ~1e-16 however exact the series (hypothesis found p = 2.6e-11 off by 4e-6 relative).
ONE_MINUS_CDF = 4 * np.finfo(float).eps
SAMPLES = settings(max_examples=25, deadline=None)


def _sample(seed: int, n: int, shift: float, decimals: int | None) -> np.ndarray:
    """Normal values; rounding makes ties within and across samples (the hard case for ranks and CDFs)."""
    values = np.random.default_rng(seed).normal(shift, 1, n)
    return np.round(values, decimals) if decimals is not None else values


def _close(actual: float, expected: float, rel: float, absolute: float = 1e-300) -> bool:
    return bool(actual == pytest.approx(expected, rel=rel, abs=absolute))


samples = st.tuples(st.integers(0, 2**32 - 1), st.floats(0, 0.3), st.sampled_from([None, 2, 1, 0]))


@SAMPLES
@given(samples, st.integers(2, 400), st.integers(2, 400))
def test_small_samples_match_scipy_exact(spec: tuple[int, float, int | None], n: int, m: int) -> None:
    seed, shift, decimals = spec
    reference, current = np.sort(_sample(seed, n, 0, decimals)), np.sort(_sample(seed + 1, m, shift, decimals))
    merged = num.merge(reference, current)
    expected_ks = stats.ks_2samp(reference, current)
    d = num.ks_statistic(merged)
    assert _close(d, expected_ks.statistic, STAT)
    assert _close(num.ks_pvalue(d, n, m, reference, current), expected_ks.pvalue, PVAL)
    assert _close(num.wasserstein(merged), stats.wasserstein_distance(reference, current), STAT)
    expected_cvm = stats.cramervonmises_2samp(reference, current)
    t = num.cvm_statistic(merged)
    assert t == pytest.approx(expected_cvm.statistic, rel=STAT, abs=1e-12)
    assert _close(num.cvm_pvalue(t, n, m, reference, current), expected_cvm.pvalue, PVAL)


@settings(max_examples=8, deadline=None)
@given(samples, st.integers(10_001, 40_000), st.integers(200, 40_000))
@example((720, 0.2378421836039166, 0), 27026, 24494)  # CvM p = 2.6e-11: 1 - F(t) rounds apart
def test_large_samples_match_scipy_asymptotic(spec: tuple[int, float, int | None], n: int, m: int) -> None:
    seed, shift, decimals = spec
    reference, current = np.sort(_sample(seed, n, 0, decimals)), np.sort(_sample(seed + 1, m, shift / 10, decimals))
    merged = num.merge(reference, current)
    d = num.ks_statistic(merged)
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert _close(d, expected.statistic, STAT)
    assert _close(num.ks_pvalue(d, n, m), expected.pvalue, PVAL)  # no data passed: must be the asymptotic formula
    assert _close(num.wasserstein(merged), stats.wasserstein_distance(reference, current), STAT)
    t = num.cvm_statistic(merged)
    expected_cvm = stats.cramervonmises_2samp(reference, current, method="asymptotic")
    assert t == pytest.approx(expected_cvm.statistic, rel=STAT, abs=1e-12)
    assert _close(num.cvm_pvalue(t, n, m), expected_cvm.pvalue, PVAL, ONE_MINUS_CDF)


def _smirnov_every_term(n: int, x: float) -> float:
    """The Birnbaum-Tingey series summed term by term (every j up to n(1 - x)), the reference for the sampled sum."""
    j = np.arange(0, int(np.floor(n * (1 - x))) + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        terms = (special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)
                 + (n - j) * np.log1p(-x - j / n) + (j - 1) * np.log(x + j / n))
    return float(x * np.exp(special.logsumexp(terms)))


# (n, n x^2) over the region where ks_pvalue sums the series (x < 0.5, 2.2 <= n x^2 < 370)
SMIRNOV_CASES = [(n, nx2) for n in (150, 20_000, 100_000, 500_000, 3_000_000) for nx2 in (2.2, 5, 20, 100, 369)
                 if nx2 / n < 0.25]


@pytest.mark.parametrize(("n", "nx2"), SMIRNOV_CASES)
def test_smirnov_series_sampled_on_wide_bumps_equals_every_term(n: int, nx2: float) -> None:
    """Beyond SMIRNOV_POINTS terms the series is summed every h-th term (a trapezoid rule): it must still be the
    series, here to 1e-10 relative, far inside the 1e-6 the p-values are held to against scipy."""
    x = float(np.sqrt(nx2 / n))
    assert smirnov_sf(n, x) == pytest.approx(_smirnov_every_term(n, x), rel=1e-10, abs=1e-300)
    if n <= 100_000:  # scipy's own series, O(n) in C: affordable here
        assert smirnov_sf(n, x) == pytest.approx(float(special.smirnov(n, x)), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("reference", "current"), [
    ([0.0, 1.0, 2.0], [5.0, 6.0]),  # disjoint, current above
    ([5.0, 6.0, 6.0], [0.0, 1.0, 1.0, 2.0]),  # disjoint, current below
    ([0.0, 10.0], [1.0, 2.0, 3.0]),  # current inside the reference's range
    ([1.0, 2.0, 3.0], [0.0, 10.0]),  # reference inside the current's range
    ([3.0, 3.0, 3.0], [3.0, 3.0]),  # one shared value
    ([1.0, 1.0, 2.0, 2.0, 2.0], [2.0, 2.0, 1.0, 3.0, 3.0, 1.0, 1.0]),  # ties on both sides
])
def test_statistics_on_edge_cases_match_scipy(reference: list[float], current: list[float]) -> None:
    """Supports that do not overlap or nest, constant samples and shared ties: the one-pass KS and Wasserstein
    against scipy."""
    r, c = np.sort(np.array(reference)), np.sort(np.array(current))
    merged = num.merge(r, c)
    assert num.ks_statistic(merged) == pytest.approx(stats.ks_2samp(r, c).statistic, rel=STAT, abs=1e-15)
    assert num.wasserstein(merged) == pytest.approx(stats.wasserstein_distance(r, c), rel=STAT, abs=1e-15)


@SAMPLES
@given(samples, st.integers(1, 300), st.integers(1, 300))
def test_at_or_below_counts_are_searchsorted_right(spec: tuple[int, float, int | None], n: int, m: int) -> None:
    """The merge's count, for each current value, of the reference values at or below it agrees with a binary
    search per value: ties inside either sample and across both, either sample ending first, one value."""
    seed, shift, decimals = spec
    reference, current = np.sort(_sample(seed, n, 0, decimals)), np.sort(_sample(seed + 1, m, shift * 10, decimals))
    np.testing.assert_array_equal(num.merge(reference, current).ref_at_or_below,
                                  np.searchsorted(reference, current, side="right"))


@pytest.mark.parametrize(("reference", "current"), [
    ([0.0, 1.0], [5.0, 6.0, 7.0]), ([5.0, 6.0], [0.0, 1.0]), ([3.0, 3.0], [3.0, 3.0, 3.0]), ([1.0, 2.0], []),
    ([1.0], [2.0, 3.0]), ([2.0, 3.0], [1.0]), ([-0.0], [0.0]), ([], [1.0, 2.0]),
])
def test_at_or_below_counts_on_edge_cases(reference: list[float], current: list[float]) -> None:
    r, c = np.array(reference), np.array(current)
    np.testing.assert_array_equal(num.merge(r, c).ref_at_or_below, np.searchsorted(r, c, side="right"))


@pytest.mark.parametrize(("reference", "current"), [
    ([0.0, np.inf], [1.0]), ([-np.inf, 0.0], [1.0]), ([0.0], [1.0, np.nan]), ([np.nan], [np.nan]),
])
def test_merge_refuses_values_that_are_not_finite(reference: list[float], current: list[float]) -> None:
    with pytest.raises(ValueError, match="finite"):
        num.merge(np.array(reference), np.array(current))


def test_the_merge_compiles_where_numba_can_cache_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only image and home leave numba no cache locator: the module still loads (compiled in-process)."""
    import importlib

    from numba.core import caching

    from detectors import sorted_merge

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    try:
        with pytest.raises(RuntimeError, match="no locator"):  # what numba does without the fallback
            numba_cached = importlib.import_module("numba").njit(cache=True)(lambda x: x)
            numba_cached(1)
        reloaded = importlib.reload(sorted_merge)
        counts, d, w = reloaded.merge_sorted(np.array([0.0, 1.0]), np.array([0.5, 2.0]))
        assert counts.tolist() == [1, 2] and d == 0.5 and w == pytest.approx(0.75)
    finally:
        monkeypatch.undo()
        importlib.reload(sorted_merge)


def test_merge_takes_any_float_layout() -> None:
    """Views with a stride and float32 columns go through the compiled merge (one signature) as copies."""
    reference, current = np.arange(20.0)[::2], np.array([3.5, 7.0, 30.0], dtype=np.float32)
    merged = num.merge(reference, current)
    np.testing.assert_array_equal(merged.ref_at_or_below, [2, 4, 10])
    assert num.ks_statistic(merged) == pytest.approx(stats.ks_2samp(reference, current).statistic)
    assert num.wasserstein(merged) == pytest.approx(stats.wasserstein_distance(reference, current))


counts = st.lists(st.integers(0, 60), min_size=2, max_size=6)


@SAMPLES
@given(counts, counts)
def test_categorical_statistics_match_scipy(ref_counts: list[int], cur_counts: list[int]) -> None:
    k = min(len(ref_counts), len(cur_counts))
    ref, cur = np.array(ref_counts[:k]), np.array(cur_counts[:k])
    if ref.sum() == 0 or cur.sum() == 0:
        return
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    statistic, p = cat.chi2_homogeneity(ref, cur)
    if table.shape[1] >= 2:
        expected = stats.chi2_contingency(table, correction=False)
        assert _close(statistic, expected.statistic, STAT) and _close(p, expected.pvalue, PVAL)
    binary_ref, binary_cur = np.array([ref[0], ref[1:].sum()]), np.array([cur[0], cur[1:].sum()])
    z, p_z = cat.z_two_proportions(binary_ref, binary_cur)
    chi2_stat, chi2_p = cat.chi2_homogeneity(binary_ref, binary_cur)
    assert z**2 == pytest.approx(chi2_stat, rel=STAT, abs=1e-12) and _close(p_z, chi2_p, PVAL)
    odds, p_f = cat.fisher(binary_ref, binary_cur)
    assert _close(p_f, stats.fisher_exact(np.vstack([binary_ref, binary_cur]).tolist()).pvalue, STAT)
    expected_js = distance.jensenshannon(ref / ref.sum(), cur / cur.sum())
    assert cat.categorical_js(ref, cur) == pytest.approx(expected_js, rel=STAT, abs=1e-12)
    assert cat.linf(ref, cur) == pytest.approx(np.abs(ref / ref.sum() - cur / cur.sum()).max(), rel=STAT)


@SAMPLES
@given(st.lists(st.floats(1e-12, 1), min_size=1, max_size=40), st.floats(0.01, 0.2))
@example([0.03125, 0.03125, 0.05810542018533242], 0.05810542018533242)  # p = alpha: p*3/3 <= alpha, yet alpha*3/3 < p
def test_benjamini_hochberg_matches_scipy(p_values: list[float], alpha: float) -> None:
    p = np.array(p_values)
    adjusted = bh_adjusted(p)
    assert np.allclose(adjusted, stats.false_discovery_control(p), rtol=STAT)
    verdicts = decide(p, alpha, "bh")
    assert (verdicts.rejected == (adjusted <= alpha)).all()
    assert (verdicts.rejected == (p <= verdicts.thresholds)).all()  # the recorded cut-off explains each verdict


def test_binned_distances_on_reference_bins() -> None:
    rng = np.random.default_rng(3)
    profile = profile_numeric(rng.normal(0, 1, 5000))
    current = np.sort(rng.normal(0.3, 1, 4000))
    bins = np.concatenate([[-np.inf], profile.bin_edges, [np.inf]])
    ref_share = np.histogram(profile.values, bins)[0] / profile.count
    cur_share = np.histogram(current, bins)[0] / len(current)
    got = num.psi(profile.bin_counts, num.binned_counts(current, profile.bin_edges))
    assert got == pytest.approx(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)), rel=STAT)
    assert ref_share == pytest.approx(np.full(10, 0.1), abs=1e-3)  # deciles of the reference
    tfdv = num.tfdv_jsd(profile.hist_edges, profile.hist_counts, current[[0, -1]],
                        np.array([len(current)]))  # current as one bucket over its range
    assert 0 < tfdv <= 1
    same = num.tfdv_jsd(profile.hist_edges, profile.hist_counts, profile.hist_edges, profile.hist_counts)
    assert same == pytest.approx(0, abs=1e-12)


def test_profile_round_trips_through_bytes_and_sketches_large_references() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(np.array(["a", "b", None], dtype=object), 300)})
    profile = profile_reference(frame, {"x": "numeric", "c": "categorical"})
    loaded = ReferenceProfile.from_bytes(profile.to_bytes())
    assert loaded.schema == {"x": "numeric", "c": "categorical"} and loaded.rows == 300
    assert np.array_equal(loaded.numeric["x"].values, np.sort(frame["x"])) and loaded.numeric["x"].exact
    assert loaded.categorical["c"].categories == ("a", "b") and loaded.categorical["c"].missing > 0
    big = rng.normal(size=100_000)
    sketch = profile_numeric(big, max_values=20_000)
    assert not sketch.exact and sketch.count == 100_000 and len(sketch.values) == 20_000
    current = np.sort(rng.normal(0.05, 1, 30_000))
    d = num.ks_statistic(num.merge(sketch.values, current))
    assert d == pytest.approx(stats.ks_2samp(big, current).statistic, abs=2 / 20_000)


def _frame(rng: np.random.Generator, n: int, shift: float, colors: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.normal(0, 1, n),
                         "c": rng.choice(["a", "b", "c"], n, p=colors), "flag": rng.choice(["no", "yes"], n)})


SCHEMA: dict[str, FeatureType] = {"x": "numeric", "y": "numeric", "c": "categorical", "flag": "categorical"}


def test_native_drift_flags_the_shifted_features_with_engine_and_test() -> None:
    rng = np.random.default_rng(5)
    window = Window(_frame(rng, 4000, 0, [0.5, 0.3, 0.2]), _frame(rng, 3000, 0.3, [0.4, 0.3, 0.3]), SCHEMA)
    detector = NativeDrift(numeric_tests=("ks", "cvm", "psi"), categorical_tests=("chi2", "z", "linf"))
    findings = detector.run(window)
    assert {(f.engine, f.detector) for f in findings} == {("native", "native_drift")}
    breached = {(f.feature, f.test) for f in findings if f.breached}
    assert {("x", "ks"), ("x", "cvm"), ("c", "chi2")} <= breached
    assert not {f for f, _ in breached} & {"y", "flag"}
    assert {f.test for f in findings if f.feature == "flag"} == {"chi2", "z", "linf"}  # z only for binary features
    profiled = Window(window.reference, window.current, SCHEMA, profile=profile_reference(window.reference, SCHEMA))
    assert [f.score for f in detector.run(profiled)] == [f.score for f in findings]


def test_effect_floor_ignores_trivial_shifts_in_huge_windows() -> None:
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 400_000)})
    current = pd.DataFrame({"x": rng.normal(0.015, 1, 400_000)})
    profile = profile_reference(reference, {"x": "numeric"})
    [without_floor] = NativeDrift(min_effect_numeric=0).check(profile, current)
    [with_floor] = NativeDrift().check(profile, current)
    assert without_floor.breached and without_floor.p_value is not None and without_floor.p_value < 1e-4
    assert not with_floor.breached and with_floor.extra["effect"] < 0.02


def test_corrections_set_the_per_feature_threshold() -> None:
    rng = np.random.default_rng(7)
    window = Window(_frame(rng, 2000, 0, [0.5, 0.3, 0.2]), _frame(rng, 2000, 0, [0.5, 0.3, 0.2]), SCHEMA)
    assert {f.threshold for f in NativeDrift(correction="bonferroni").run(window)} == {0.05 / 4}
    assert {f.threshold for f in NativeDrift(correction="none").run(window)} == {0.05}


@pytest.mark.parametrize(("name", "params", "field"), [
    ("native_drift", {"numeric_tests": ["ks", "anderson"]}, "numeric_tests"),
    ("native_drift", {"categorical_tests": []}, "categorical_tests"),
    ("native_drift", {"correction": "holm"}, "correction"),
    ("native_drift", {"thresholds": {"psi": -0.1}}, "thresholds"),
    ("native_drift", {"min_effect_numeric": -1}, "min_effect_numeric"),
    ("evidently_compatible_drift", {"drift_share": 0}, "drift_share"),
    ("evidently_compatible_drift", {"numeric_method": "psi"}, "numeric_method"),
])
def test_bad_params_name_the_field(name: str, params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        registry.build(name, params)
    assert error.value.errors()[0]["loc"][0] == field
