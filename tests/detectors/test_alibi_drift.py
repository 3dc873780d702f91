"""The alibi-detect engine against scipy and the native engine on the same data.

Tests marked `alibi` need the optional extra and run in `.venv-alibi` (`make test`); the main suite deselects them
and checks here only what holds without alibi-detect: registration, params, and the error naming the extra.
"""

import subprocess
import sys
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from detectors import categorical_stats as cat
from detectors import numeric_stats as num
from detectors import registry
from detectors.alibi_drift import AlibiDrift, AlibiMMDDrift
from detectors.base import DATASET, FeatureType, InsufficientData, Window
from detectors.multiple_testing import Correction
from detectors.native_drift import NativeDrift

SCHEMA: dict[str, FeatureType] = {"x": "numeric", "y": "numeric", "c": "categorical", "flag": "categorical"}
alibi = pytest.mark.alibi


def _frame(rng: np.random.Generator, n: int, shift: float, colors: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.normal(0, 1, n),
                         "c": rng.choice(["a", "b", "c"], n, p=colors), "flag": rng.choice(["no", "yes"], n)})


def _windows(seed: int = 5) -> tuple[Window, Window]:
    """A healthy window and one where x shifts and c's shares move (y and flag stay put)."""
    rng = np.random.default_rng(seed)
    reference = _frame(rng, 4000, 0, [0.5, 0.3, 0.2])
    healthy = Window(reference, _frame(rng, 3000, 0, [0.5, 0.3, 0.2]), SCHEMA)
    shifted = Window(reference, _frame(rng, 3000, 0.3, [0.4, 0.3, 0.3]), SCHEMA)
    return healthy, shifted


def _f32(value: float) -> float:
    """alibi keeps statistics and p-values in float32: scipy's float64 rounded to nearest."""
    return float(np.float32(value))


def _counts(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    union = sorted(set(reference) | set(current))
    return (reference.value_counts().reindex(union, fill_value=0).to_numpy(),
            current.value_counts().reindex(union, fill_value=0).to_numpy())


@pytest.mark.parametrize(("name", "params", "field"), [
    ("alibi_drift", {"p_value": 1.5}, "p_value"),
    ("alibi_drift", {"correction": "none"}, "correction"),
    ("alibi_drift", {"min_rows": 0}, "min_rows"),
    ("alibi_drift", {"p_val": 0.01}, "p_val"),  # alibi's own name: ours is p_value, as on the other engines
    ("alibi_mmd_drift", {"n_permutations": 5}, "n_permutations"),
    ("alibi_mmd_drift", {"max_rows": 100_000}, "max_rows"),
    ("alibi_mmd_drift", {"backend": "tensorflow"}, "backend"),
])
def test_bad_params_name_the_field(name: str, params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        registry.build(name, params)
    assert error.value.errors()[0]["loc"][0] == field


def test_registered_on_the_alibi_engine_without_importing_it() -> None:
    assert registry.engine_of("alibi_drift") == registry.engine_of("alibi_mmd_drift") == "alibi-detect"
    assert registry.build("alibi_mmd_drift", {"seed": 3}) == AlibiMMDDrift(seed=3)
    code = "import sys, detectors.registry as r; r.names(); assert 'alibi_detect' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("detector", [AlibiDrift(), AlibiMMDDrift()])
def test_without_the_extra_running_names_it(detector: AlibiDrift | AlibiMMDDrift,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alibi_detect", None)  # None in sys.modules: the import fails as if absent
    monkeypatch.delitem(sys.modules, "alibi_detect.cd", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'watchtower\[alibi\]'"):
        detector.run(_windows()[0])


@alibi
@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(30, 600), st.integers(30, 600), st.floats(0, 0.5),
       st.sampled_from([None, 1, 0]), st.integers(2, 6))
def test_p_values_are_scipys_in_float32(seed: int, n: int, m: int, shift: float, decimals: int | None,
                                        levels: int) -> None:
    rng = np.random.default_rng(seed)
    reference, current = rng.normal(0, 1, n), rng.normal(shift, 1, m)
    if decimals is not None:  # ties, within and across samples
        reference, current = np.round(reference, decimals), np.round(current, decimals)
    categories = np.array(list("abcdef"[:levels]))
    window = Window(pd.DataFrame({"x": reference, "c": rng.choice(categories, n)}),
                    pd.DataFrame({"x": current, "c": rng.choice(categories[: max(levels - 1, 2)], m)}),
                    {"x": "numeric", "c": "categorical"})
    ks, chi2, _ = AlibiDrift(min_rows=2).run(window)

    expected_ks = stats.ks_2samp(reference, current, method="asymp")  # alibi's KS is always asymptotic
    d = num.ks_statistic(num.merge(np.sort(reference), np.sort(current)))
    native_p = num.ks_pvalue(d, n, m)  # no data passed: the native asymptotic p-value
    assert d == pytest.approx(expected_ks.statistic, rel=1e-12)
    assert native_p == pytest.approx(expected_ks.pvalue, rel=1e-9, abs=1e-300)
    assert (ks.statistic, ks.p_value) == (_f32(expected_ks.statistic), _f32(expected_ks.pvalue))

    ref_counts, cur_counts = _counts(window.reference["c"], window.current["c"])
    table = np.vstack([ref_counts, cur_counts])
    expected_chi2 = stats.chi2_contingency(table)  # Yates' correction when there are two categories
    assert (chi2.statistic, chi2.p_value) == (_f32(expected_chi2.statistic), _f32(expected_chi2.pvalue))
    if table.shape[1] > 2:  # no continuity correction: the native chi-square is the same test
        statistic, p = cat.chi2_homogeneity(ref_counts, cur_counts)
        assert (statistic, p) == pytest.approx((expected_chi2.statistic, expected_chi2.pvalue), rel=1e-9)


@alibi
@pytest.mark.parametrize(("correction", "native_correction"), [("bonferroni", "bonferroni"), ("fdr", "bh")])
def test_same_verdicts_as_native_on_healthy_and_shifted_data(correction: Literal["bonferroni", "fdr"],
                                                             native_correction: Correction) -> None:
    native = NativeDrift(correction=native_correction, min_effect_numeric=0, min_effect_categorical=0)
    healthy, shifted = _windows()
    for window, drifted in ((healthy, set()), (shifted, {"x", "c"})):
        findings = AlibiDrift(correction=correction).run(window)
        by_feature = {f.feature: f for f in findings}
        assert {(f.detector, f.engine) for f in findings} == {("alibi_drift", "alibi-detect")}
        assert [(f.feature, f.test) for f in findings] == [("x", "ks"), ("y", "ks"), ("c", "chi2"),
                                                           ("flag", "chi2"), (DATASET, "tabular_drift")]
        assert {f.feature for f in findings if f.breached} == drifted | ({DATASET} if drifted else set())
        assert {f.feature for f in native.run(window) if f.breached} == drifted
        dataset = by_feature[DATASET]
        assert dataset.extra["drifted_features"] == len(drifted) and dataset.score == min(
            f.score for f in findings)
        for f in findings[:-1]:
            assert f.breached == (f.p_value is not None and f.p_value < f.threshold)


@alibi
def test_thresholds_are_the_corrected_ones() -> None:
    healthy, shifted = _windows()
    assert {f.threshold for f in AlibiDrift(p_value=0.1).run(healthy)} == {0.1 / 4}
    assert {f.threshold for f in AlibiDrift(correction="fdr").run(healthy)} == {0.05 / 4}  # nothing rejected
    # FDR: both drifted features rejected, so the step-up cut-off is 2 * q / n.
    [threshold] = {f.threshold for f in AlibiDrift(correction="fdr").run(shifted)}
    assert threshold == pytest.approx(2 * 0.05 / 4)


@alibi
def test_incomplete_rows_are_dropped_and_unseen_categories_counted() -> None:
    rng = np.random.default_rng(8)
    reference = _frame(rng, 500, 0, [0.5, 0.3, 0.2])
    current = _frame(rng, 400, 0, [0.5, 0.3, 0.2])
    reference.loc[:9, "x"] = np.nan
    current.loc[:4, "c"] = None
    current.loc[5:7, "y"] = np.inf
    current.loc[100:139, "c"] = "new"
    findings = {f.feature: f for f in AlibiDrift().run(Window(reference, current, SCHEMA))}
    assert {k: findings[DATASET].extra[k] for k in ("reference_n", "reference_dropped", "current_n",
                                                   "current_dropped")} == {
        "reference_n": 490, "reference_dropped": 10, "current_n": 392, "current_dropped": 8}
    ref, cur = reference.iloc[10:], current.iloc[8:]
    ref_counts, cur_counts = _counts(ref["c"], cur["c"])
    assert len(ref_counts) == 4 and ref_counts[-1] == 0  # "new" is a category of its own
    expected = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
    assert findings["c"].p_value == _f32(expected.pvalue) and findings["c"].breached
    assert findings["x"].p_value == _f32(stats.ks_2samp(ref["x"], cur["x"], method="asymp").pvalue)
    with pytest.raises(InsufficientData):
        AlibiDrift(min_rows=393).run(Window(reference, current, SCHEMA))


@alibi
def test_mmd_flags_the_shifted_window_reproducibly() -> None:
    healthy, shifted = _windows()
    detector = AlibiMMDDrift(max_rows=300, n_permutations=100, seed=1)
    [calm] = detector.run(healthy)
    [drift] = detector.run(shifted)
    assert (drift.detector, drift.engine, drift.test, drift.feature) == ("alibi_mmd_drift", "alibi-detect", "mmd",
                                                                         DATASET)
    assert drift.breached and drift.p_value == 0 and drift.statistic is not None
    assert drift.statistic > drift.extra["distance_threshold"]
    assert not calm.breached and calm.p_value is not None and calm.p_value > 0.05
    assert drift.extra["sampled_reference"] == drift.extra["sampled_current"] == 300
    assert detector.run(healthy) == [calm]  # seeded sample and permutations


@alibi
def test_mmd_without_torch_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="PyTorch"):
        AlibiMMDDrift().run(_windows()[0])
