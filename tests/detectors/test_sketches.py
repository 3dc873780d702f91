"""Mergeable profiles and profile mode: merges add up, sketch statistics stay within their bounds, and profile-mode
verdicts (native drift, prediction drift, missing values, non-finite, volume, schema) match exact ones where the
issue says they must."""

import itertools
import json
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from detectors import numeric_stats as num
from detectors.base import PREDICTION, PROBA_PREFIX, Detector, FeatureType, Finding, Window
from detectors.native_drift import NativeDrift
from detectors.non_finite import NonFinite
from detectors.quality import MissingValues, OutOfRange, UnseenCategories
from detectors.schema_check import SchemaMismatch
from detectors.sketches import compare
from detectors.sketches.profile import (
    MAGIC,
    OTHER,
    Profile,
    count_categories,
    merge,
    profile_frame,
    sketch_floats,
    sketch_numeric,
)
from detectors.stat_drift import PredictionDrift
from detectors.volume import Volume

SCHEMA = {"x": "numeric", "y": "numeric", "colour": "categorical"}


def frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.01] = np.nan
    x[:2] = [np.inf, -np.inf]
    return pd.DataFrame({"x": x, "y": rng.integers(0, 50, n).astype(float),
                         "colour": rng.choice(["red", "green", "blue", None], n, p=[0.5, 0.3, 0.15, 0.05])})


def test_merge_adds_up_in_any_order_and_grouping() -> None:
    rng = np.random.default_rng(1)
    parts = [frame(rng, n) for n in (3_000, 5_000, 7_000)]
    whole = pd.concat(parts, ignore_index=True)
    profiles = [profile_frame(p, SCHEMA) for p in parts]
    merged = [merge([merge(profiles[:2]), profiles[2]]), merge([profiles[0], merge(profiles[1:])])]
    merged += [merge(list(order)) for order in itertools.permutations(profiles)]
    exact = profile_frame(whole, SCHEMA)
    for m in merged:
        assert m.rows == exact.rows == len(whole)
        for name in ("x", "y"):
            a, b = m.numeric[name], exact.numeric[name]
            assert (a.count, a.missing, a.non_finite) == (b.count, b.missing, b.non_finite)
            assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
            assert a.total == pytest.approx(b.total) and a.std == pytest.approx(b.std)
            # Below its capacity a KLL sketch is exact; here it compacts, so compare ranks within the error.
            points = np.quantile(whole[name][np.isfinite(whole[name])], [0.1, 0.5, 0.9])
            gap = np.abs(np.array(a.kll().get_cdf(points)) - np.array(b.kll().get_cdf(points)))
            assert gap.max() <= 2 * a.rank_error
        assert dict(m.categorical["colour"].counts) == dict(exact.categorical["colour"].counts)
        assert m.categorical["colour"].missing == exact.categorical["colour"].missing


def test_profile_round_trips_through_both_encodings() -> None:
    rng = np.random.default_rng(2)
    profile = profile_frame(frame(rng, 20_000), SCHEMA)
    stored, wire = profile.to_bytes(), profile.to_json()
    assert Profile.from_bytes(stored) == profile and Profile.from_json(wire) == profile
    assert Profile.from_bytes(json.dumps(wire).encode()) == profile  # the stored reader takes the wire form too
    assert stored.startswith(MAGIC) and len(stored) < 60_000  # two sketches at k = 1024 and a few counts
    assert len(stored) < 0.8 * len(json.dumps(wire))  # raw sketch bytes, no base64
    with pytest.raises(ValueError, match="format"):
        Profile.from_bytes(b'{"version": 99}')
    with pytest.raises(ValueError, match="format"):
        Profile.from_json({"version": 99})


@pytest.mark.parametrize("n", [10_000, 200_000, 1_000_000])
@pytest.mark.parametrize("shift", [0.0, 0.02, 0.05, 0.3])
def test_sketch_d_is_within_its_bound_of_the_exact_d(n: int, shift: float) -> None:
    rng = np.random.default_rng(int(n + shift * 100))
    ref, cur = rng.normal(0, 1, n), rng.normal(shift, 1.1, n)
    sketched = compare.ks(sketch_numeric(ref), sketch_numeric(cur))
    exact = num.ks_statistic(num.merge(np.sort(ref), np.sort(cur)))
    assert abs(sketched.d - exact) <= sketched.bound
    assert sketched.bound < 0.01  # k = 1024: well under the effect floor


def test_small_columns_are_exact_in_a_sketch() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 500), rng.normal(0.4, 1, 400)
    sketched = compare.ks(sketch_numeric(ref), sketch_numeric(cur))
    assert sketched.d == pytest.approx(num.ks_statistic(num.merge(np.sort(ref), np.sort(cur))))


def test_profile_mode_verdicts_equal_exact_verdicts_at_a_million_rows() -> None:
    """Every healthy feature and every shift of at least 0.1 sigma gets the exact test's verdict."""
    rng = np.random.default_rng(4)
    n = 1_000_000
    shifts = {"healthy_a": 0.0, "healthy_b": 0.0, "healthy_c": 0.0, "shift_01": 0.1, "shift_02": 0.2,
              "shift_05": 0.5, "shift_10": 1.0}
    schema = dict.fromkeys(shifts, "numeric") | {"plan": "categorical", "plan_shifted": "categorical"}
    reference = pd.DataFrame({name: rng.normal(0, 2.0, n) for name in shifts})
    current = pd.DataFrame({name: rng.normal(2.0 * s, 2.0, n) for name, s in shifts.items()})
    plans = ["basic", "plus", "pro"]
    reference["plan"] = reference["plan_shifted"] = rng.choice(plans, n, p=[0.6, 0.3, 0.1])
    current["plan"] = rng.choice(plans, n, p=[0.6, 0.3, 0.1])
    current["plan_shifted"] = rng.choice(plans, n, p=[0.55, 0.33, 0.12])
    detector = NativeDrift()
    exact = {f.feature: f.breached for f in detector.run(Window(reference, current, schema, task="regression"))}
    profiles = (profile_frame(reference, schema), profile_frame(current, schema))
    found = detector.run(Window(reference.iloc[:0], current.iloc[:0], schema, task="regression", sketched=profiles))
    sketched = {f.feature: f.breached for f in found}
    assert sketched == exact
    assert [name for name, breached in exact.items() if breached] == [
        "shift_01", "shift_02", "shift_05", "shift_10", "plan_shifted"]
    assert all(f.mode == "sketch k=1024" and f.extra["error_bound"] < 0.01 for f in found)


def _one_shifted_feature(seed: int, shift: float, **params: float) -> Finding:
    """Profile-mode finding on one feature, 1M rows per side, the current side shifted by `shift` sigma."""
    rng = np.random.default_rng(seed)
    n = 1_000_000
    reference, current = pd.DataFrame({"x": rng.normal(0, 1, n)}), pd.DataFrame({"x": rng.normal(shift, 1, n)})
    schema: dict[str, FeatureType] = {"x": "numeric"}
    profiles = (profile_frame(reference, schema), profile_frame(current, schema))
    [finding] = NativeDrift(min_effect_numeric=0.0, **params).run(
        Window(reference.iloc[:0], current.iloc[:0], schema, sketched=profiles))
    return finding


def test_a_significant_but_tiny_d_does_not_breach_in_profile_mode() -> None:
    """At 1M rows per side a 0.03-sigma shift (exact D about 0.012) has a KS p far below 0.05 but a D under a
    0.025 floor. KLL compaction is random: the margins hold for any sketch within its stated error (0.006) plus
    the sampling noise (0.0014), so no run can flip either assertion."""
    finding = _one_shifted_feature(5, 0.03, min_d=0.025)
    assert finding.statistic is not None and finding.statistic < 0.025
    assert finding.p_value is not None and finding.p_value < 0.05
    assert not finding.breached


def test_near_threshold_is_said() -> None:
    # A shift whose D lands on the 0.01 floor: the sketch error could put it on either side.
    finding = _one_shifted_feature(6, 0.025, min_d=0.01)
    assert finding.statistic is not None and abs(finding.statistic - 0.01) <= finding.extra["error_bound"]
    assert "near threshold" in finding.note and finding.extra["near_threshold"] == 1.0


def test_categories_beyond_the_cap_switch_chi2_for_distances() -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    names = np.array([f"sku-{i}" for i in range(300)])
    reference = pd.DataFrame({"sku": rng.choice(names, n)})
    current = pd.DataFrame({"sku": rng.choice(names, n)})
    schema = {"sku": "categorical"}
    exact_counts = (profile_frame(reference, schema), profile_frame(current, schema))
    capped = (profile_frame(reference, schema, category_cap=100), profile_frame(current, schema, category_cap=100))
    detector = NativeDrift()
    [chi2] = detector.run(Window(reference.iloc[:0], current.iloc[:0], schema, sketched=exact_counts))
    [exact] = detector.run(Window(reference, current, schema))
    assert chi2.test == exact.test == "chi2" and chi2.statistic == pytest.approx(exact.statistic)
    found = detector.run(Window(reference.iloc[:0], current.iloc[:0], schema, sketched=capped))
    assert sorted(f.test for f in found) == ["jensen_shannon", "linf"]
    assert all("beyond the cap" in f.note and f.p_value is None for f in found)
    counts = capped[0].categorical["sku"]
    assert counts.capped and len(counts.counts) == 101 and counts.count == n
    assert counts.distinct == pytest.approx(300, rel=0.05)


def test_capped_merges_keep_the_top_categories_whatever_the_order() -> None:
    rng = np.random.default_rng(8)
    parts = [pd.Series(rng.choice([f"c{i}" for i in range(50)], 2_000)) for _ in range(3)]
    counted = [count_categories(p, cap=10) for p in parts]
    orders = [merge([Profile(2_000, categorical={"c": c}) for c in order]).categorical["c"]
              for order in itertools.permutations(counted)]
    assert all(o.counts == orders[0].counts for o in orders)
    assert orders[0].count == 6_000 and OTHER in orders[0].counts


def _both_modes(detector: Detector, reference: pd.DataFrame, current: pd.DataFrame,
                schema: dict[str, FeatureType], profile_schema: dict[str, FeatureType],
                task: Literal["classification", "regression"] = "regression") -> tuple[list[Finding], list[Finding]]:
    """The detector's findings on the rows, and on the two frames' profiles (no rows in that window)."""
    exact = detector.run(Window(reference, current, schema, task=task))
    profiles = (profile_frame(reference, profile_schema), profile_frame(current, profile_schema))
    return exact, detector.run(Window(reference.iloc[:0], current.iloc[:0], schema, task=task, sketched=profiles))


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_prediction_drift_on_profiles_gives_the_exact_verdicts_at_a_million_rows(shift: float) -> None:
    """Regression predictions and class probabilities (KS from sketches), 1M rows per side."""
    rng = np.random.default_rng(11 + int(shift * 10))
    n = 1_000_000
    proba = f"{PROBA_PREFIX}yes"
    reference = pd.DataFrame({PREDICTION: rng.normal(0, 2.0, n), proba: rng.beta(2, 5, n)})
    current = pd.DataFrame({PREDICTION: rng.normal(2.0 * shift, 2.0, n), proba: rng.beta(2, 5, n)})
    current[proba] = np.clip(current[proba] + shift * reference[proba].std(), 0, 1)
    schema: dict[str, FeatureType] = {PREDICTION: "numeric", proba: "numeric"}
    exact, found = _both_modes(PredictionDrift(probabilities=True), reference, current, {}, schema)
    assert [(f.feature, f.breached) for f in found] == [(f.feature, f.breached) for f in exact]
    assert [f.breached for f in exact] == [shift > 0, shift > 0]
    assert [f.feature for f in found] == ["prediction", "probability:yes"]
    assert all(f.mode == "sketch k=1024" and 0 < f.extra["error_bound"] < 0.01 for f in found)
    assert all(e.mode == "exact" and abs(e.statistic - f.statistic) <= f.extra["error_bound"]  # type: ignore[operator]
               for e, f in zip(exact, found, strict=True))


@pytest.mark.parametrize("shares", [(0.6, 0.3, 0.1), (0.55, 0.33, 0.12)])
def test_predicted_classes_on_profiles_give_the_exact_chi_square(shares: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(12)
    n = 1_000_000
    classes = ["basic", "plus", "pro"]
    reference = pd.DataFrame({PREDICTION: rng.choice(classes, n, p=[0.6, 0.3, 0.1])})
    current = pd.DataFrame({PREDICTION: rng.choice(classes, n, p=list(shares))})
    schema: dict[str, FeatureType] = {PREDICTION: "categorical"}
    [exact], [found] = _both_modes(PredictionDrift(), reference, current, {}, schema, task="classification")
    assert found.test == exact.test == "chi2" and found.statistic == pytest.approx(exact.statistic)
    assert found.p_value == pytest.approx(exact.p_value, abs=1e-12)
    assert found.breached == exact.breached == (shares[0] != 0.6)
    assert found.mode == "sketch k=1024" and found.extra["error_bound"] == 0.0 and found.note == ""


def test_predicted_classes_beyond_the_cap_are_compared_by_l_infinity() -> None:
    rng = np.random.default_rng(13)
    classes = [f"c{i}" for i in range(40)]
    reference = pd.DataFrame({PREDICTION: rng.choice(classes, 20_000)})
    current = pd.DataFrame({PREDICTION: rng.choice(classes[:20], 20_000)})  # half the classes vanished
    schema: dict[str, FeatureType] = {PREDICTION: "categorical"}
    profiles = (profile_frame(reference, schema, category_cap=10), profile_frame(current, schema, category_cap=10))
    [found] = PredictionDrift().run(Window(reference.iloc[:0], current.iloc[:0], {}, sketched=profiles))
    assert found.test == "linf" and found.p_value is None and found.breached
    assert "beyond the cap" in found.note


def test_missing_values_on_profiles_equal_the_exact_shares_at_a_million_rows() -> None:
    rng = np.random.default_rng(14)
    n = 1_000_000
    schema: dict[str, FeatureType] = {"healthy": "numeric", "broken": "numeric", "colour": "categorical",
                                      "colour_broken": "categorical"}

    def frame(missing: dict[str, float]) -> pd.DataFrame:
        out = pd.DataFrame({"healthy": rng.normal(0, 1, n), "broken": rng.normal(0, 1, n),
                            "colour": rng.choice(["red", "blue"], n).astype(object),
                            "colour_broken": rng.choice(["red", "blue"], n).astype(object)})
        for name, share in missing.items():
            out.loc[rng.random(n) < share, name] = np.nan if schema[name] == "numeric" else None
        return out

    reference = frame(dict.fromkeys(schema, 0.02))
    current = frame({"healthy": 0.05, "broken": 0.09, "colour": 0.02, "colour_broken": 0.3})
    current.loc[:9, "healthy"] = np.inf  # infinities are not missing, in either mode
    exact, found = _both_modes(MissingValues(), reference, current, schema, schema)
    assert [(f.feature, f.score, f.threshold, f.breached) for f in found] == [
        (f.feature, pytest.approx(f.score), pytest.approx(f.threshold), f.breached) for f in exact]
    assert [f.feature for f in found if f.breached] == ["broken", "colour_broken"]
    assert all(f.mode == "sketch k=1024" and f.extra["error_bound"] == 0.0 for f in found)


def test_non_finite_volume_and_schema_run_on_profiles() -> None:
    rng = np.random.default_rng(15)
    schema: dict[str, FeatureType] = {"x": "numeric", "colour": "categorical"}
    reference = pd.DataFrame({"x": rng.normal(0, 1, 5_000), "colour": rng.choice(["a", "b"], 5_000)})
    current = pd.DataFrame({"x": rng.normal(0, 1, 2_000), "colour": rng.choice(["a", "b"], 2_000)})
    current.loc[:29, "x"] = np.inf
    current.loc[30:39, "x"] = -np.inf
    rejected = pd.DataFrame({"kind": ["missing"], "feature": ["colour"], "count": [100]})
    detectors: list[Detector] = [NonFinite(), Volume(expected_per_hour=1000), SchemaMismatch()]
    start = pd.Timestamp("2026-11-28T10:00Z").to_pydatetime()
    end = start + pd.Timedelta(hours=1).to_pytimedelta()
    exact_window = Window(reference, current, schema, start=start, end=end, rejected=rejected)
    profiles = (profile_frame(reference, schema), profile_frame(current, schema))
    sketched = Window(reference.iloc[:0], current.iloc[:0], schema, start=start, end=end, rejected=rejected,
                      sketched=profiles)
    for detector in detectors:
        exact, found = detector.run(exact_window), detector.run(sketched)
        assert [(f.test, f.feature, f.score, f.breached) for f in found] == [
            (f.test, f.feature, pytest.approx(f.score), f.breached) for f in exact]
        assert all(f.mode == "sketch k=1024" for f in found)
    [non_finite] = NonFinite().run(sketched)
    assert non_finite.score == pytest.approx(40 / 2_000) and non_finite.extra["non_finite"] == 40
    absent = (profiles[0], merge([Profile(500, numeric={"x": sketch_numeric(np.zeros(500))})]))
    missing = SchemaMismatch().run(Window(reference.iloc[:0], current.iloc[:0], schema, sketched=absent))
    assert [(f.test, f.feature, f.score) for f in missing] == [("missing", "colour", 1.0)]


def test_out_of_range_and_unseen_categories_on_profiles_match_the_rows_within_their_bounds() -> None:
    rng = np.random.default_rng(16)
    n = 200_000
    schema: dict[str, FeatureType] = {"healthy": "numeric", "rescaled": "numeric", "colour": "categorical",
                                      "renamed": "categorical"}
    reference = pd.DataFrame({"healthy": rng.normal(0, 1, n), "rescaled": rng.normal(0, 1, n),
                              "colour": rng.choice(["red", "blue"], n), "renamed": rng.choice(["a", "b"], n)})
    current = pd.DataFrame({"healthy": rng.normal(0, 1, n), "rescaled": rng.normal(0, 1, n) * 3,
                            "colour": rng.choice(["red", "blue"], n), "renamed": rng.choice(["a", "b", "B"], n)})
    current.loc[:99, "healthy"] = np.inf  # 0.05 %: outside any range, under the 1 % threshold
    detectors: list[Detector] = [OutOfRange(), UnseenCategories()]
    for detector in detectors:
        exact, found = _both_modes(detector, reference, current, schema, schema)
        assert [(f.feature, f.breached) for f in found] == [(f.feature, f.breached) for f in exact]
        for e, f in zip(exact, found, strict=True):
            assert abs(f.score - e.score) <= f.extra["error_bound"] + 1e-12
            assert f.mode == "sketch k=1024"
    breached = [f.feature for d in detectors for f in _both_modes(d, reference, current, schema, schema)[1]
                if f.breached]
    assert breached == ["rescaled", "renamed"]


def test_unseen_categories_past_the_cap_count_only_what_is_known_and_say_so() -> None:
    rng = np.random.default_rng(17)
    reference = pd.DataFrame({"sku": rng.choice([f"s{i}" for i in range(30)], 10_000)})
    current = pd.DataFrame({"sku": rng.choice([f"s{i}" for i in range(20, 50)], 10_000)})
    schema: dict[str, FeatureType] = {"sku": "categorical"}
    [exact] = UnseenCategories().run(Window(reference, current, schema))
    profiles = (profile_frame(reference, schema, category_cap=10), profile_frame(current, schema, category_cap=10))
    [found] = UnseenCategories().run(Window(reference.iloc[:0], current.iloc[:0], schema, sketched=profiles))
    assert found.score <= exact.score <= found.score + found.extra["error_bound"]
    assert "beyond the cap" in found.note and found.extra["capped"] == 1.0


def test_an_out_of_range_share_within_the_sketch_error_of_its_threshold_is_near_threshold() -> None:
    rng = np.random.default_rng(18)
    n = 200_000
    reference, current = pd.DataFrame({"x": rng.normal(0, 1, n)}), pd.DataFrame({"x": rng.normal(0, 1, n)})
    current.loc[: n // 100 - 1, "x"] = 50.0  # exactly 1 %, the threshold, above the reference's maximum
    schema: dict[str, FeatureType] = {"x": "numeric"}
    [exact], [found] = _both_modes(OutOfRange(), reference, current, schema, schema)
    assert exact.score == pytest.approx(0.01, abs=1e-4)  # plus the few normal values past the reference range
    assert 0 < found.extra["error_bound"] < 0.01 and abs(found.score - 0.01) <= found.extra["error_bound"]
    assert "near threshold" in found.note and found.extra["near_threshold"] == 1.0


@pytest.mark.parametrize(("n", "m"), [(1_000_000, 1_000_000), (1_000_000, 100_000_000), (50_000, 20_000)])
def test_the_sketch_ks_p_value_agrees_with_the_exact_series(n: int, m: int) -> None:
    """Kolmogorov's limit above the effective size where profile mode uses it: within 2% of the exact series
    wherever a verdict could be taken (p from 1e-40 to 1), far below what the sketch's own D error moves."""
    for d in np.linspace(0.0005, 0.01, 20):
        exact, sketched = num.ks_pvalue(d, n, m), num.ks_pvalue_sketched(d, n, m)
        if exact > 1e-40:
            assert sketched == pytest.approx(exact, rel=0.02), d


@pytest.mark.parametrize("n", [5_000, 200_000])
@pytest.mark.parametrize("order", ["as drawn", "ascending", "descending", "sawtooth"])
def test_a_column_is_sketched_within_its_rank_error_whatever_its_order(n: int, order: str) -> None:
    """sketch_floats feeds KLL the values sorted (7 times less work); the bound holds for a stream in any order,
    so the column's own order does not matter either."""
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(0, 1, n // 2), rng.exponential(3, n - n // 2)])
    if order == "ascending":
        values = np.sort(values)
    elif order == "descending":
        values = np.sort(values)[::-1].copy()
    elif order == "sawtooth":
        values = np.sort(values).reshape(10, -1).T.ravel().copy()
    sketch = sketch_floats(values, 200)
    points = np.quantile(values, np.linspace(0.01, 0.99, 99))
    exact = np.searchsorted(np.sort(values), points, side="right") / n
    assert np.abs(np.array(sketch.kll().get_cdf(points))[:-1] - exact).max() <= sketch.rank_error
    assert (sketch.kll().n, sketch.count, sketch.minimum, sketch.maximum) == (n, n, values.min(), values.max())
    assert sketch.total == pytest.approx(values.sum())
