"""Learned thresholds: values against numpy, direction, floor, fallback, reference chunks on a real drift run."""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from detectors.base import FeatureType, Finding, Window
from detectors.native_drift import NativeDrift
from detectors.profile import profile_reference
from detectors.thresholds import (
    FittedThreshold,
    MeanStdThreshold,
    QuantileThreshold,
    ScoreHistory,
    StaticThreshold,
    apply,
    chunk_bounds,
    fit,
    learn,
    parse_spec,
    reference_chunk_scores,
)

SCORES = [0.12, 0.31, 0.05, 0.27, 0.18, 0.22, 0.09, 0.40, 0.15, 0.11, 0.26, 0.19]
SCHEMA: dict[str, FeatureType] = {"x": "numeric", "y": "numeric", "c": "categorical"}


def _finding(score: float, threshold: float, direction: str = "above", test: str = "psi", feature: str = "x",
             **extra: float) -> Finding:
    breached = score >= threshold if direction == "above" else score < threshold
    return Finding("d", "native", test, feature, score=score, threshold=threshold, breached=breached,
                   direction=direction, extra=dict(extra))  # type: ignore[arg-type]


def _fitted(value: float | None, direction: str = "above", source: str = "learned") -> FittedThreshold:
    return FittedThreshold(value=value, source=source, n=12, direction=direction)  # type: ignore[arg-type]


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.normal(0, 1, n),
                         "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})


@pytest.mark.parametrize(("spec", "direction", "expected", "source"), [
    (QuantileThreshold(mode="quantile", q=0.9), "above", np.quantile(SCORES, 0.9), "quantile 0.9 of 12 healthy scores"),
    (QuantileThreshold(mode="quantile", q=0.9), "below", np.quantile(SCORES, 0.1), "quantile 0.1 of 12 healthy scores"),
    (MeanStdThreshold(mode="mean_std", k=2.5), "above", np.mean(SCORES) + 2.5 * np.std(SCORES),
     "mean+2.5·std of 12 healthy scores"),
    (MeanStdThreshold(mode="mean_std", k=2.5), "below", np.mean(SCORES) - 2.5 * np.std(SCORES),
     "mean-2.5·std of 12 healthy scores"),
])
def test_learned_values_match_numpy_on_the_healthy_side(spec: QuantileThreshold | MeanStdThreshold, direction: str,
                                                        expected: float, source: str) -> None:
    [fitted] = fit(spec, {("psi", "x"): ScoreHistory(direction, SCORES)}).values()  # type: ignore[arg-type]
    assert fitted.value == pytest.approx(expected, rel=1e-12)
    assert (fitted.source, fitted.n, fitted.direction) == (source, 12, direction)


def test_floor_is_the_strictest_a_learned_threshold_may_get() -> None:
    quiet = {("out_of_range", "x"): ScoreHistory("above", [0.0] * 12),  # zero variance: learned 0
             ("ks", "x"): ScoreHistory("below", [1.0] * 12),  # p-values all 1: learned 1
             ("psi", "x"): ScoreHistory("above", SCORES)}
    spec = MeanStdThreshold(mode="mean_std", k=3, floor=0.05)
    fitted = fit(spec, quiet)
    assert fitted[("out_of_range", "x")].value == 0.05
    assert fitted[("out_of_range", "x")].source == "mean+3·std of 12 healthy scores, held at floor 0.05 (learned 0)"
    assert fitted[("ks", "x")].value == 0.05  # below: min(learned, floor)
    assert fitted[("psi", "x")].value == pytest.approx(np.mean(SCORES) + 3 * np.std(SCORES))  # above the floor: kept
    low_p = fit(spec, {("ks", "x"): ScoreHistory("below", [0.01, 0.02] * 6)})[("ks", "x")]
    assert low_p.value is not None and low_p.value < 0.05 and "floor" not in low_p.source


def test_too_few_healthy_scores_keep_the_static_threshold_and_say_so() -> None:
    spec = QuantileThreshold(mode="quantile", min_samples=5)
    [fitted] = fit(spec, {("psi", "x"): ScoreHistory("above", [0.1, float("nan"), 0.2, float("inf"), 0.3])}).values()
    assert (fitted.value, fitted.n, fitted.source) == (None, 3, "static (only 3 healthy scores, need 5)")
    finding = _finding(0.25, 0.2)
    [applied] = apply([finding], {("psi", "x"): fitted})
    assert (applied.threshold, applied.breached) == (0.2, True)
    assert applied.threshold_source == "static (only 3 healthy scores, need 5)"


def test_max_history_keeps_only_the_newest_scores() -> None:
    spec = QuantileThreshold(mode="quantile", q=0.5, min_samples=2, max_history=3)
    [fitted] = fit(spec, {("psi", "x"): ScoreHistory("above", [9.0, 9.0, 1.0, 2.0, 3.0])}).values()
    assert (fitted.value, fitted.n) == (2.0, 3)


def test_apply_recomputes_breached_strictly_beyond_the_learned_threshold() -> None:
    fitted = {("psi", "x"): _fitted(0.3), ("ks", "x"): _fitted(0.01, "below", "quantile 0.01 of 12 healthy scores")}
    cases = [
        (_finding(0.3, 0.2), False),  # at the learned value: healthy (the detector alone breaches at >= 0.2)
        (_finding(0.31, 0.5), True),
        (_finding(0.01, 0.05, "below", "ks"), False),
        (_finding(0.009, 0.05, "below", "ks"), True),
    ]
    applied = apply([f for f, _ in cases], fitted)
    assert [f.breached for f in applied] == [expected for _, expected in cases]
    assert [f.threshold for f in applied] == [0.3, 0.3, 0.01, 0.01]
    assert applied[2].threshold_source == "quantile 0.01 of 12 healthy scores"
    [untouched] = apply([_finding(0.9, 0.2, feature="y")], fitted)
    assert untouched == _finding(0.9, 0.2, feature="y") and untouched.threshold_source == "static"


def test_a_constant_healthy_history_does_not_breach_on_its_own_value() -> None:
    fitted = fit(QuantileThreshold(mode="quantile"), {("out_of_range", "x"): ScoreHistory("above", [0.0] * 20)})
    [share_zero, share_some] = apply([_finding(0.0, 0.01, test="out_of_range"),
                                      _finding(0.002, 0.01, test="out_of_range")], fitted)
    assert not share_zero.breached and share_some.breached and share_some.threshold == 0.0


def test_native_drift_effect_floor_still_applies_under_a_learned_threshold() -> None:
    fitted = {("ks", "x"): _fitted(0.01, "below")}
    small, big = apply([_finding(1e-6, 0.05, "below", "ks", effect=0.01, min_effect=0.02),
                        _finding(1e-6, 0.05, "below", "ks", effect=0.03, min_effect=0.02)], fitted)
    assert not small.breached and big.breached


def test_a_threshold_fitted_for_the_other_side_is_refused() -> None:
    with pytest.raises(ValueError, match="fitted for below"):
        apply([_finding(0.5, 0.2)], {("psi", "x"): _fitted(0.3, "below")})


def test_static_spec_learns_nothing_and_findings_say_static() -> None:
    rng = np.random.default_rng(2)
    window = Window(_frame(rng, 600), _frame(rng, 300), SCHEMA)
    findings = NativeDrift().run(window)
    assert fit(StaticThreshold(), {("ks", "x"): ScoreHistory("below", SCORES)}) == {}
    assert apply(findings, learn(parse_spec(None), NativeDrift(), window)) == findings
    assert {f.threshold_source for f in findings} == {"static"}


def test_reference_chunks_learn_thresholds_a_healthy_window_passes_and_a_shift_breaches() -> None:
    rng = np.random.default_rng(1)
    reference = _frame(rng, 6000)
    detector = NativeDrift(numeric_tests=("psi",), categorical_tests=("psi",))
    spec = parse_spec({"mode": "mean_std", "k": 3, "source": "reference_chunks", "chunk_rows": 500})
    fitted = learn(spec, detector, Window(reference, _frame(rng, 500), SCHEMA))
    assert set(fitted) == {("psi", "x"), ("psi", "y"), ("psi", "c")}
    assert {(f.n, f.source) for f in fitted.values()} == {(12, "mean+3·std over 12 reference chunks")}
    healthy = apply(detector.run(Window(reference, _frame(rng, 500), SCHEMA)), fitted)
    shifted = apply(detector.run(Window(reference, _frame(rng, 500, shift=0.5), SCHEMA)), fitted)
    assert not any(f.breached for f in healthy)
    assert [f.feature for f in shifted if f.breached] == ["x"]
    learned = fitted[("psi", "x")].value
    assert learned is not None and all(f.threshold == fitted[(f.test, f.feature)].value for f in healthy)
    assert learned < 0.2  # tighter than the static PSI threshold (0.2) for 500-row windows


def test_chunks_against_the_rest_never_use_the_whole_reference_profile() -> None:
    rng = np.random.default_rng(3)
    reference = _frame(rng, 2000)
    detector = NativeDrift(numeric_tests=("ks", "psi"))
    plain = Window(reference, reference.iloc[:0], SCHEMA)
    wrong_profile = profile_reference(_frame(rng, 2000, shift=3.0), SCHEMA)  # would make every chunk drift
    profiled = Window(reference, reference.iloc[:0], SCHEMA, profile=wrong_profile)
    assert reference_chunk_scores(detector, profiled, 5) == reference_chunk_scores(detector, plain, 5)
    whole_profiled = Window(reference, reference.iloc[:0], SCHEMA, profile=profile_reference(reference, SCHEMA))
    assert reference_chunk_scores(detector, whole_profiled, 5, against="whole") == \
        reference_chunk_scores(detector, plain, 5, against="whole")


def test_chunk_bounds_are_consecutive() -> None:
    assert chunk_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert chunk_bounds(10, chunk_rows=4) == [(0, 4), (4, 8)]
    assert chunk_bounds(2, 5) == [(0, 1), (1, 2)]


def test_specs_as_written_in_a_monitor_config() -> None:
    assert parse_spec({"mode": "static"}) == StaticThreshold()
    spec = parse_spec({"mode": "quantile", "q": 0.99, "max_history": 200, "floor": 0.1})
    assert isinstance(spec, QuantileThreshold) and (spec.source, spec.min_samples) == ("history", 10)
    spec = parse_spec({"mode": "mean_std", "k": 3, "source": "reference_chunks", "chunks": 20, "against": "whole"})
    assert isinstance(spec, MeanStdThreshold) and (spec.chunks, spec.against) == (20, "whole")


@pytest.mark.parametrize(("data", "field"), [
    ({"mode": "quantile", "q": 1.0}, "q"),
    ({"mode": "quantile", "q": 0}, "q"),
    ({"mode": "mean_std", "k": -1}, "k"),
    ({"mode": "mean_std", "min_samples": 1}, "min_samples"),
    ({"mode": "quantile", "source": "reference_chunks", "chunks": 1}, "chunks"),
    ({"mode": "quantile", "source": "logs"}, "source"),
    ({"mode": "static", "q": 0.9}, "q"),
    ({"mode": "quantile", "p": 0.9}, "p"),
    ({"mode": "median"}, "mode"),
    ({"q": 0.9}, "mode"),
])
def test_bad_spec_params_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_spec(data)
    first = error.value.errors()[0]
    assert field in first["loc"] or f"'{field}'" in first["msg"]


@pytest.mark.parametrize(("data", "field"), [
    ({"mode": "quantile", "chunks": 5}, "chunks"),  # chunk settings with the history source
    ({"mode": "quantile", "source": "reference_chunks", "chunks": 5, "chunk_rows": 100}, "chunk_rows"),
    ({"mode": "mean_std", "source": "reference_chunks", "chunks": 5}, "chunks"),  # fewer than min_samples
    ({"mode": "mean_std", "max_history": 5}, "max_history"),
])
def test_inconsistent_specs_name_the_field_in_the_message(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_spec(data)
    assert error.value.errors()[0]["msg"].startswith(f"Value error, {field}:")
