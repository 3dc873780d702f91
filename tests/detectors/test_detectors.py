"""Detectors are pure: DataFrames in, Findings out. Checked against scipy and on known shifts."""

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats

from detectors import registry
from detectors.base import LABEL, PREDICTION, Detector, DetectorKind, Finding, InsufficientData, Window
from detectors.kpi import Accuracy
from detectors.quality import MissingValues
from detectors.stat_drift import PredictionDrift, StatDrift, chi2_test


def _window(shift: float = 0.0, n: int = 800, seed: int = 0, colors: tuple[float, ...] = (0.5, 0.3, 0.2)) -> Window:
    rng = np.random.default_rng(seed)

    def frame(offset: float, p: tuple[float, ...], size: int) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(offset, 1, size), "y": rng.normal(0, 1, size),
                             "c": rng.choice(["a", "b", "c"], size=size, p=list(p)),
                             PREDICTION: rng.integers(0, 2, size)})

    return Window(frame(0.0, (0.5, 0.3, 0.2), 2000), frame(shift, colors, n),
                  {"x": "numeric", "y": "numeric", "c": "categorical"})


def test_every_detector_subclass_is_registered() -> None:
    registry.names()  # loads the built-in modules
    subclasses = {cls.name for cls in _all_subclasses(Detector) if cls.__module__.startswith("detectors.")}
    assert subclasses == set(registry.names())
    assert {"evidently_drift", "stat_drift", "prediction_drift", "accuracy", "missing_values"} <= subclasses


def test_every_detector_declares_its_kind_and_registration_refuses_one_without() -> None:
    kinds = {name: registry.kind_of(name) for name in registry.names()}
    assert all(isinstance(kind, DetectorKind) for kind in kinds.values()), kinds
    assert kinds["missing_values"] == DetectorKind.DATA_QUALITY and kinds["accuracy"] == DetectorKind.KPI
    assert kinds["native_drift"] == DetectorKind.INPUT_DRIFT and kinds["estimated_accuracy"] == "estimated_kpi"

    class Kindless(Detector):
        name: ClassVar[str] = "kindless"

        def run(self, window: Window) -> list[Finding]:
            return []

    with pytest.raises(TypeError, match="declares no `kind"):
        registry.register(Kindless)
    assert "kindless" not in registry.names()


def _all_subclasses(cls: type) -> list[type]:
    return [s for c in cls.__subclasses__() for s in [c, *_all_subclasses(c)]]


def test_stat_drift_matches_scipy_and_flags_only_the_shifted_column() -> None:
    window = _window(shift=0.4)
    findings = {f.feature: f for f in StatDrift().run(window)}
    expected = stats.ks_2samp(window.reference["x"], window.current["x"])
    assert findings["x"].p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert findings["x"].statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert findings["x"].threshold == pytest.approx(0.05 / 3)
    assert [f for f, v in findings.items() if v.breached] == ["x"]


def test_chi2_is_a_two_sample_test_on_the_contingency_table() -> None:
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    cur = pd.Series(["a"] * 30 + ["b"] * 60 + ["c"] * 10)
    statistic, p = chi2_test(ref, cur)
    table = np.array([[50, 50, 0], [30, 60, 10]])
    expected = stats.chi2_contingency(table, correction=False)
    assert statistic == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert chi2_test(pd.Series(["a"] * 5), pd.Series(["a"] * 9)) == (0.0, 1.0)


def test_categorical_shift_is_found() -> None:
    findings = {f.feature: f for f in StatDrift().run(_window(colors=(0.2, 0.3, 0.5)))}
    assert findings["c"].test == "chi2" and findings["c"].breached and not findings["x"].breached


def test_evidently_drift_agrees_with_scipy_ks() -> None:
    from detectors.evidently_drift import EvidentlyDrift

    window = _window(shift=0.5)
    findings = {f.feature: f for f in EvidentlyDrift().run(window)}
    assert findings["x"].engine == "evidently" and findings["x"].test == "ks"
    assert findings["x"].p_value == pytest.approx(stats.ks_2samp(window.reference["x"], window.current["x"]).pvalue,
                                                  rel=1e-6)
    assert findings["x"].breached and not findings["y"].breached


def test_prediction_drift_uses_chi2_for_classes() -> None:
    window = _window()
    window.current[PREDICTION] = 1
    [finding] = PredictionDrift().run(window)
    assert finding.feature == "prediction" and finding.test == "chi2" and finding.breached


def test_accuracy_needs_labels_and_compares_with_reference() -> None:
    window = _window(n=100)
    window.reference[LABEL] = window.reference[PREDICTION]
    with pytest.raises(InsufficientData):
        Accuracy().run(window)
    window.current[LABEL] = window.current[PREDICTION]
    window.current.loc[:29, LABEL] = 1 - window.current.loc[:29, PREDICTION]
    [finding] = Accuracy(max_drop=0.1).run(window)
    assert finding.score == pytest.approx(0.7) and finding.threshold == pytest.approx(0.9) and finding.breached


def test_missing_values_against_the_reference_share() -> None:
    window = _window(n=200)
    window.current.loc[:49, "y"] = np.nan
    findings = {f.feature: f for f in MissingValues(max_increase=0.1).run(window)}
    assert findings["y"].score == pytest.approx(0.25) and findings["y"].breached
    assert findings["y"].direction == "above" and not findings["x"].breached


@pytest.mark.parametrize(("name", "params", "field"), [
    ("stat_drift", {"p_value": 1.5}, "p_value"),
    ("evidently_drift", {"numeric_method": "wasserstein"}, "numeric_method"),
    ("accuracy", {"min_labels": 0}, "min_labels"),
    ("missing_values", {"unknown": 1}, "unknown"),
])
def test_bad_params_name_the_field(name: str, params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        registry.build(name, params)
    assert error.value.errors()[0]["loc"][0] == field


def test_out_of_range_counts_values_outside_the_reference_span() -> None:
    from detectors.quality import OutOfRange

    window = _window(n=200)
    low, high = window.reference["x"].min(), window.reference["x"].max()
    window.current.loc[:9, "x"] = high + 100  # a unit change on 5% of rows
    window.current.loc[10, "x"] = np.inf
    findings = {f.feature: f for f in OutOfRange(max_share=0.02).run(window)}
    assert findings["x"].score == pytest.approx(11 / 200) and findings["x"].breached
    assert findings["x"].extra == {"reference_min": low, "reference_max": high}
    assert not findings["y"].breached and "c" not in findings


def test_unseen_categories_flag_a_renamed_feed() -> None:
    from detectors.quality import UnseenCategories

    window = _window(n=100)
    window.current.loc[:19, "c"] = "A"  # upstream started sending upper case
    [finding] = UnseenCategories().run(window)
    assert finding.feature == "c" and finding.score == pytest.approx(0.2) and finding.breached
    assert finding.extra == {"unseen_values": 1.0}
    with pytest.raises(ValidationError):
        UnseenCategories(max_share=2)
