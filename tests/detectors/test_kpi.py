"""KPI detectors: every metric against scikit-learn to 1e-12, label delay and coverage, thresholds, bad params."""

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sklearn import metrics

from detectors import kpi_metrics, registry
from detectors.base import ERROR, LABEL, LATENCY, PREDICTION, PROBA_PREFIX, TS, InsufficientData, Window, class_name
from detectors.kpi import Accuracy, ClassificationKPI, LogLoss, RegressionKPI
from detectors.operational import BusinessKPI, ErrorRate, Latency
from tests import factories
from tests.factories import BuiltModels

END = datetime(2024, 5, 1, 12, tzinfo=UTC)
EXACT = 1e-12


def classified(n: int, seed: int, classes: int = 2, hit_rate: float = 0.7) -> pd.DataFrame:
    """Labelled rows of a noisy classifier: integer labels, predictions right `hit_rate` of the time, probabilities."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    predictions = np.where(rng.random(n) < hit_rate, labels, rng.integers(0, classes, n))
    probas = rng.dirichlet(np.ones(classes), n) * 0.5
    probas[np.arange(n), predictions] += 0.5  # the predicted class gets the most mass, rows sum to 1
    frame = pd.DataFrame({"x": rng.normal(0, 1, n), PREDICTION: predictions, LABEL: labels})
    for c in range(classes):
        frame[f"{PROBA_PREFIX}{c}"] = probas[:, c]
    frame[TS] = [END - timedelta(seconds=int(s)) for s in rng.integers(1, 3600, n)]
    return frame


def window(current: pd.DataFrame, reference: pd.DataFrame | None = None, **kw: Any) -> Window:
    reference = classified(2000, seed=99, hit_rate=0.8) if reference is None else reference
    return Window(reference, current, {"x": "numeric"}, end=END, **kw)


def only(findings: list[Any]) -> Any:
    [finding] = findings
    return finding


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("metric", "sklearn_metric"), [
    ("precision", metrics.precision_score), ("recall", metrics.recall_score), ("f1", metrics.f1_score)])
def test_precision_recall_f1_match_sklearn(metric: str, sklearn_metric: Any, seed: int) -> None:
    binary, multi = classified(500, seed), classified(500, seed, classes=4, hit_rate=0.5)
    for positive in ("0", "1"):
        detector = registry.build("classification_kpi", {"metric": metric, "positive_class": positive,
                                                         "min_value": 0, "max_drop": None})
        expected = sklearn_metric(binary[LABEL], binary[PREDICTION], pos_label=int(positive))
        assert only(detector.run(window(binary))).score == pytest.approx(expected, abs=EXACT)
    for average in ("macro", "weighted"):
        detector = registry.build("classification_kpi", {"metric": metric, "average": average, "min_value": 0,
                                                         "max_drop": None})
        expected = sklearn_metric(multi[LABEL], multi[PREDICTION], average=average)
        assert only(detector.run(window(multi))).score == pytest.approx(expected, abs=EXACT)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_roc_auc_and_log_loss_match_sklearn(seed: int) -> None:
    binary, multi = classified(500, seed), classified(500, seed, classes=3, hit_rate=0.5)
    auc = ClassificationKPI(metric="roc_auc", min_value=0, max_drop=None)
    assert only(auc.run(window(binary))).score == pytest.approx(
        metrics.roc_auc_score(binary[LABEL], binary[f"{PROBA_PREFIX}1"]), abs=EXACT)
    probas = multi[[f"{PROBA_PREFIX}{c}" for c in range(3)]].to_numpy()
    for average in ("macro", "weighted"):
        params = {"metric": "roc_auc", "average": average, "min_value": 0, "max_drop": None}
        found = only(registry.build("classification_kpi", params).run(window(multi))).score
        assert found == pytest.approx(metrics.roc_auc_score(multi[LABEL], probas, multi_class="ovr",
                                                            average=average), abs=EXACT)
    loss = only(LogLoss(max_value=10, max_increase=None).run(window(multi)))
    assert loss.score == pytest.approx(metrics.log_loss(multi[LABEL], probas), abs=EXACT)
    assert loss.test == loss.feature == "log_loss" and loss.direction == "above"


def test_ties_in_scores_count_half_as_in_sklearn() -> None:
    current = classified(400, seed=5)
    current[f"{PROBA_PREFIX}1"] = current[f"{PROBA_PREFIX}1"].round(1)
    found = only(ClassificationKPI(metric="roc_auc", min_value=0, max_drop=None).run(window(current))).score
    assert found == pytest.approx(metrics.roc_auc_score(current[LABEL], current[f"{PROBA_PREFIX}1"]), abs=EXACT)


def test_labels_with_gaps_or_as_strings_still_match_int_predictions() -> None:
    current = classified(300, seed=4)
    labelled = current.iloc[50:]
    expected = metrics.f1_score(labelled[LABEL], labelled[PREDICTION])
    gappy = current.assign(**{LABEL: current[LABEL].where(current.index >= 50)})
    assert gappy[LABEL].dtype == np.float64  # a label column with gaps is float: 1.0 must still equal 1
    strings = labelled.assign(**{LABEL: labelled[LABEL].astype(str)})
    detector = ClassificationKPI(metric="f1", min_value=0, max_drop=None)
    for frame in (gappy, strings):
        assert only(detector.run(window(frame))).score == pytest.approx(expected, abs=EXACT)
    booleans = labelled.assign(**{LABEL: labelled[LABEL] == 1, PREDICTION: (labelled[PREDICTION] == 1).map(
        {True: "true", False: "false"})})  # JSON true/false as labels, the store's spelling as predictions
    detector = registry.build("classification_kpi", {"metric": "f1", "positive_class": "true", "min_value": 0,
                                                     "max_drop": None})
    assert only(detector.run(window(booleans))).score == pytest.approx(expected, abs=EXACT)


@pytest.mark.parametrize(("metric", "expected"), [
    ("mae", metrics.mean_absolute_error), ("rmse", metrics.root_mean_squared_error),
    ("mape", metrics.mean_absolute_percentage_error)])
def test_regression_errors_match_sklearn(metric: str, expected: Any) -> None:
    rng = np.random.default_rng(7)
    labels = rng.normal(50, 10, 400)
    current = pd.DataFrame({"x": 0.0, LABEL: labels, PREDICTION: labels + rng.normal(0, 3, 400)})
    reference = pd.DataFrame({"x": 0.0, LABEL: labels, PREDICTION: labels + rng.normal(0, 2, 400)})
    finding = only(registry.build("regression_kpi", {"metric": metric}).run(
        window(current, reference, task="regression")))
    assert finding.score == pytest.approx(expected(current[LABEL], current[PREDICTION]), abs=EXACT)
    assert finding.extra["reference_value"] == pytest.approx(expected(reference[LABEL], reference[PREDICTION]),
                                                             abs=EXACT)
    # errors grew by half against a reference 1.5x better: above the default 20% ceiling
    assert finding.breached and finding.threshold == pytest.approx(finding.extra["reference_value"] * 1.2)
    assert finding.test == finding.feature == metric and finding.direction == "above"


def test_mape_leaves_out_zero_labels_and_says_how_many() -> None:
    rng = np.random.default_rng(8)
    labels = np.r_[np.zeros(10), rng.uniform(1, 5, 90)]
    current = pd.DataFrame({"x": 0.0, LABEL: labels, PREDICTION: labels + rng.normal(0, 0.5, 100)})
    finding = only(RegressionKPI(metric="mape", max_value=1, max_increase=None)
                   .run(window(current, current, task="regression")))
    nonzero = current.iloc[10:]
    assert finding.score == pytest.approx(metrics.mean_absolute_percentage_error(nonzero[LABEL], nonzero[PREDICTION]),
                                          abs=EXACT)
    assert finding.extra["zero_labels_excluded"] == 10 and finding.extra["labelled"] == 100
    zeros = current.assign(**{LABEL: 0.0})
    with pytest.raises(InsufficientData, match="every one of the 100 labels is 0"):
        RegressionKPI(metric="mape", max_value=1, max_increase=None).run(window(zeros, zeros, task="regression"))


def test_breach_below_the_reference_minus_max_drop_and_not_above() -> None:
    healthy, degraded = classified(1000, seed=11, hit_rate=0.8), classified(1000, seed=12, hit_rate=0.5)
    detector = ClassificationKPI(metric="recall", average="macro", max_drop=0.05)
    ok = only(detector.run(window(healthy)))
    bad = only(detector.run(window(degraded)))
    assert not ok.breached and bad.breached
    assert bad.threshold == pytest.approx(bad.extra["reference_value"] - 0.05)
    assert bad.test == "recall" and bad.feature == "recall (macro)"
    floored = only(ClassificationKPI(metric="precision", min_value=0.99, max_drop=None).run(window(healthy)))
    assert floored.threshold == 0.99 and floored.breached and floored.feature == "precision (class 1)"


def test_label_delay_counts_only_rows_old_enough_and_reports_coverage() -> None:
    current = classified(400, seed=13)
    current[TS] = [END - timedelta(seconds=s) for s in range(400)]  # one event a second up to the end
    current[LABEL] = current[LABEL].astype(object)
    current.loc[current.index[:100], LABEL] = None  # the newest 100 have no label yet
    current.loc[current.index[250:300], LABEL] = None  # and 50 older ones never got one
    delayed = only(Accuracy(min_labels=10, label_delay_s=100).run(window(current)))
    eligible = current.iloc[100:]
    assert delayed.extra["eligible"] == 300 and delayed.extra["labelled"] == 250
    assert delayed.extra["coverage"] == pytest.approx(250 / 300)
    labelled = eligible.dropna(subset=[LABEL])
    assert delayed.score == pytest.approx(metrics.accuracy_score(labelled[LABEL].astype(int), labelled[PREDICTION]),
                                          abs=EXACT)
    assert only(Accuracy(min_labels=10).run(window(current))).extra["eligible"] == 400
    with pytest.raises(InsufficientData, match=r"^250 labelled events of 300 served at least 100s before the "
                                               r"window end, need 251$"):
        Accuracy(min_labels=251, label_delay_s=100).run(window(current))
    with pytest.raises(InsufficientData, match="served time"):
        Accuracy(label_delay_s=60).run(window(current.drop(columns=[TS])))


def test_missing_labels_probabilities_or_reference_is_insufficient_data() -> None:
    unlabelled = classified(100, seed=14).assign(**{LABEL: None})
    with pytest.raises(InsufficientData, match="^0 labelled events of 100, need 30$"):
        ClassificationKPI(metric="f1").run(window(unlabelled))
    no_probas = classified(100, seed=14).drop(columns=[f"{PROBA_PREFIX}0", f"{PROBA_PREFIX}1"])
    for detector in (ClassificationKPI(metric="roc_auc"), LogLoss()):
        with pytest.raises(InsufficientData, match="needs class probabilities and the model reports none"):
            detector.run(window(no_probas))
    no_reference_labels = classified(500, seed=15).assign(**{LABEL: None})
    with pytest.raises(InsufficientData, match="set a fixed bound"):
        ClassificationKPI(metric="f1").run(window(classified(100, seed=14), no_reference_labels))
    reference_without_probas = classified(500, seed=15).drop(columns=[f"{PROBA_PREFIX}0", f"{PROBA_PREFIX}1"])
    with pytest.raises(InsufficientData, match="set a fixed bound"):
        LogLoss().run(window(classified(100, seed=14), reference_without_probas))
    capped = only(LogLoss(max_value=5).run(window(classified(100, seed=14), reference_without_probas)))
    assert capped.threshold == 5 and "reference_value" not in capped.extra
    never_positive = classified(100, seed=14).assign(**{LABEL: 0})
    with pytest.raises(InsufficientData, match="undefined"):
        ClassificationKPI(metric="recall", min_value=0.5).run(window(never_positive))
    with pytest.raises(InsufficientData, match="regressors only"):
        RegressionKPI(metric="mae").run(window(classified(100, seed=14)))


def test_latency_percentiles_ignore_missing_values() -> None:
    rng = np.random.default_rng(16)
    latencies = rng.lognormal(3, 0.5, 500)
    current = pd.DataFrame({"x": 0.0, LATENCY: np.r_[latencies, [np.nan] * 20]})
    finding = only(Latency(max_ms=80, percentile=99).run(window(current)))
    assert finding.score == pytest.approx(np.percentile(latencies, 99), abs=EXACT)
    assert finding.extra["p50"] == pytest.approx(np.median(latencies), abs=EXACT)
    assert finding.extra["without_latency"] == 20 and finding.test == "p99" and finding.feature == "latency_ms"
    assert finding.breached == (np.percentile(latencies, 99) > 80)
    assert not only(Latency(max_ms=1e6).run(window(current))).breached
    with pytest.raises(InsufficientData, match="20 events with a latency, need 30"):
        Latency(max_ms=100).run(window(current.iloc[500:].assign(**{LATENCY: 1.0})))


def test_error_rate_counts_set_errors_only() -> None:
    errors = ["timeout"] * 5 + [None] * 90 + [np.nan] * 5
    current = pd.DataFrame({"x": 0.0, ERROR: errors})
    finding = only(ErrorRate(max_rate=0.04).run(window(current)))
    assert finding.score == 0.05 and finding.breached and finding.extra == {"errors": 5.0, "events": 100.0}
    assert not only(ErrorRate(max_rate=0.05).run(window(current))).breached
    with pytest.raises(InsufficientData, match="10 events, need 30"):
        ErrorRate().run(window(current.iloc[:10]))


def test_business_kpi_aggregates_pushed_points() -> None:
    points = pd.DataFrame({"name": ["revenue", "revenue", "signups", "revenue"], "value": [10.0, 30.0, 7.0, 20.0],
                           "ts": [END - timedelta(minutes=m) for m in (30, 5, 1, 20)]})
    w = window(classified(10, seed=17), metrics=points)
    expected = {"mean": 20.0, "sum": 60.0, "last": 30.0, "count": 3.0}  # last = latest ts, not last row
    for aggregate, value in expected.items():
        params = {"metric": "revenue", "aggregate": aggregate, "min_value": 0}
        finding = only(registry.build("business_kpi", params).run(w))
        assert finding.score == value and finding.feature == "revenue" and finding.test == f"{aggregate}_min"
    low, high = BusinessKPI(metric="revenue", min_value=25, max_value=100).run(w)
    assert (low.breached, low.threshold, low.direction) == (True, 25, "below")
    assert (high.breached, high.threshold, high.direction) == (False, 100, "above")
    with pytest.raises(InsufficientData, match="no 'churned' points"):
        BusinessKPI(metric="churned", max_value=1).run(w)
    with pytest.raises(InsufficientData, match="3 'revenue' points, need 5"):
        BusinessKPI(metric="revenue", max_value=1, min_points=5).run(w)
    with pytest.raises(InsufficientData):
        BusinessKPI(metric="revenue", max_value=1).run(window(classified(10, seed=17)))


@pytest.mark.parametrize(("name", "params", "field"), [
    ("latency", {"max_ms": 100, "percentile": 101}, "percentile"),
    ("latency", {}, "max_ms"),
    ("error_rate", {"max_rate": 1.5}, "max_rate"),
    ("classification_kpi", {"metric": "f2"}, "metric"),
    ("classification_kpi", {"metric": "f1", "average": "micro"}, "average"),
    ("log_loss", {"max_value": 0}, "max_value"),
    ("regression_kpi", {"metric": "mae", "max_increase": -0.1}, "max_increase"),
    ("regression_kpi", {"metric": "mae", "label_delay_s": -1}, "label_delay_s"),
    ("business_kpi", {"metric": "revenue", "aggregate": "median", "min_value": 1}, "aggregate"),
    ("business_kpi", {"metric": "", "min_value": 1}, "metric"),
    ("estimated_accuracy", {"calibration": "platt"}, "calibration"),
])
def test_bad_params_name_the_field(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        registry.build(name, params)
    assert error.value.errors()[0]["loc"] == (field,)


@pytest.mark.parametrize(("name", "params"), [
    ("classification_kpi", {"metric": "f1", "max_drop": None}), ("log_loss", {"max_increase": None}),
    ("regression_kpi", {"metric": "rmse", "max_increase": None}), ("business_kpi", {"metric": "revenue"}),
    ("estimated_accuracy", {"max_drop": None})])
def test_a_kpi_without_any_bound_is_refused(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="set (min|max)_value"):
        registry.build(name, params)


@pytest.mark.parametrize(("detector", "field"), [
    ({"name": "classification_kpi", "params": {"metric": "auc"}}, "metric"),
    ({"name": "latency", "params": {"max_ms": 100, "percentile": 101}}, "percentile"),
    ({"name": "estimated_accuracy", "params": {"min_rows": 0}}, "min_rows"),
], ids=["kpi", "operational", "cbpe"])
def test_a_bad_param_through_the_api_is_a_422_naming_it(client: TestClient, models: BuiltModels,
                                                        detector: dict[str, Any], field: str) -> None:
    factories.register_tensor(client, models)
    response = client.put("/models/churn/monitors/default", json={"detectors": [detector]})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [f"body.detectors.0.params.{field}"]


@pytest.mark.parametrize("values", [
    pd.Series(["1", "0", None, "1"], dtype=object), pd.Series([1, 0, 2, 1]), pd.Series([1.0, np.nan, 0.0, 2.5]),
    pd.Series([True, False, True]), pd.Series(["a", None, "b"], dtype="string"),
    pd.Series([1, 1.0, True, "1", None, float("nan"), np.int64(2), {"a": 1}, False, 0], dtype=object),
], ids=["strings", "ints", "floats", "bools", "string-dtype", "mixed"])
def test_class_names_spell_each_value_as_class_name_does(values: pd.Series) -> None:
    """The factorized fast path gives the same spelling per value as the one-by-one definition."""
    expected = [class_name(v) for v in values]
    assert kpi_metrics.class_names(values).tolist() == expected
    assert kpi_metrics.class_names(pd.Series([True, 1, 1.0], dtype=object)).tolist() == ["true", "1", "1"]
