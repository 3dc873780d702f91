"""Each signature on a window built to show it, and on a look-alike that must not get its tag (pure: no database)."""

import numpy as np
import pandas as pd
import pytest

from detectors.base import ID, LABEL, PREDICTION
from postmortems.diagnosis.evidence import Evidence
from postmortems.diagnosis.suggest import diagnose
from tests.postmortems.diagnosis.windows import Model, features, labels, reference_and_model, suggestions, window


@pytest.fixture(scope="module")
def trained() -> tuple[pd.DataFrame, Model]:
    return reference_and_model()


def _served(model: Model, frame: pd.DataFrame, seed: int, offset: float = 0.0) -> pd.DataFrame:
    if LABEL not in frame:
        frame[LABEL] = labels(frame, seed).astype(str)
    return model.score(frame, offset=offset)


def test_seconds_to_milliseconds_is_a_unit_change_and_names_the_map(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    current["session_length"] *= 1000
    found = suggestions(window(reference, _served(model, current, 9)))
    unit = found["unit-change"]
    assert unit.signature == "unit_change" and unit.confidence >= 0.8
    assert unit.reason.startswith("session_length looks like the reference ×1000 (seconds → milliseconds): KS p ")
    assert "training-serving-skew" not in found and "covariate-shift" not in found  # the map explains the move


def test_fahrenheit_served_for_celsius_is_a_unit_change(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    current["temperature"] = current["temperature"] * 1.8 + 32
    unit = suggestions(window(reference, _served(model, current, 9)))["unit-change"]
    assert "temperature looks like the reference Celsius → Fahrenheit" in unit.reason


def test_a_broad_shift_that_no_map_fixes_is_no_unit_change(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    rng = np.random.default_rng(3)  # a new population: wider, skewed the other way, and moved
    current["session_length"] = rng.gamma(2.0, 60.0, 600) + rng.normal(30, 40, 600).clip(0)
    found = suggestions(window(reference, _served(model, current, 9)))
    assert "unit-change" not in found
    assert "session_length" in found["covariate-shift"].reason


def test_a_seasonal_shift_of_many_features_is_covariate_shift_not_skew(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=8, shift=0.6)
    current["temperature"] += 4.0  # summer
    found = suggestions(window(reference, _served(model, current, 8)))
    assert not {"training-serving-skew", "categorical-encoding-mismatch", "unit-change", "concept-drift"} & set(found)
    covariate = found["covariate-shift"]
    assert "inputs moved (f1, f2, temperature)" in covariate.reason and "from labels vs" in covariate.reason


def test_id_joined_mismatches_between_training_and_serving_are_skew(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = _served(model, features(400, seed=9), 9)
    current[ID] = [f"e{i}" for i in range(len(current))]
    logged = current[[ID, "f1", "f2", "f3", "session_length", "temperature", "color"]].copy()
    logged.loc[logged.index[:200], "f3"] += 0.5  # the training pipeline computed f3 differently for half the ids
    w = window(reference, current, stages={"training": logged})
    skew = suggestions(w, [("feature_skew", {})])["training-serving-skew"]
    assert skew.reason.startswith("f3: 50% of 400 ids differ between the logged stage and serving")


def test_respelled_categories_are_an_encoding_skew(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    current["color"] = current["color"].replace({"red": "Red ", "blue": "navy"})  # case+space, and a rename
    found = suggestions(window(reference, _served(model, current, 9)))
    encoding = found["categorical-encoding-mismatch"]
    assert "'Red ' for 'red'" in encoding.reason and "'navy' where the reference had 'blue'" in encoding.reason


def test_a_genuinely_new_category_is_no_encoding_skew(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    current.loc[current.index[:90], "color"] = "purple"  # a new product line; every old colour still sold
    found = suggestions(window(reference, _served(model, current, 9)))
    assert "categorical-encoding-mismatch" not in found and "training-serving-skew" not in found


def test_a_feature_defaulted_to_zero_while_others_stay_healthy_is_a_broken_join(
        trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    current.loc[current.index[:540], "session_length"] = 0.0
    current.loc[current.index[:500], "temperature"] = np.nan
    broken = suggestions(window(reference, _served(model, current, 9)))["broken-join"]
    assert "session_length defaulted to 0.0 in 90% of rows (0.0% in the reference)" in broken.reason
    assert "temperature missing in 83% of rows (0% in the reference)" in broken.reason
    assert "4 other features healthy" in broken.reason


def test_a_feature_that_was_always_sparse_is_no_broken_join(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    reference = reference.copy()
    reference.loc[reference.index[:1200], "session_length"] = 0.0  # 60% zeros in training already
    current = features(600, seed=9)
    current.loc[current.index[:390], "session_length"] = 0.0  # 65% now
    assert "broken-join" not in suggestions(window(reference, _served(model, current, 9)))


def test_requests_refused_for_a_missing_feature_are_a_broken_join(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    empty = _served(model, features(600, seed=9), 9).iloc[:0]
    rejected = pd.DataFrame({"kind": ["missing"], "feature": ["temperature"], "count": [400]})
    broken = suggestions(window(reference, empty, rejected=rejected))["broken-join"]
    assert broken.reason.startswith("temperature missing from 400 refused events (100% of the window's 400)")


def test_labels_worse_than_the_estimate_expects_are_concept_drift(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    truth = labels(current, 9)
    flipped = np.random.default_rng(4).random(600) < 0.35  # the world changed its mind about a third of cases
    current[LABEL] = np.where(flipped, 1 - truth, truth).astype(str)
    found = suggestions(window(reference, _served(model, current, 9)))
    concept = found["concept-drift"]
    assert "covariate-shift" not in found
    assert concept.reason.startswith("accuracy from labels 0.")
    assert "that the input shift alone explains" in concept.reason


def test_a_kpi_drop_the_input_shift_explains_is_covariate_shift_not_concept(
        trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    current[["f1", "f2"]] *= 0.25  # traffic crowds near the decision boundary: accuracy falls, as expected
    found = suggestions(window(reference, _served(model, current, 9)))
    assert "kpi-degradation" in found and "concept-drift" not in found
    assert "accuracy held as the inputs explain" in found["covariate-shift"].reason


def test_predictions_that_move_without_their_inputs_are_a_model_change(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = _served(model, features(600, seed=9), 9, offset=1.5)
    found = suggestions(window(reference, current))
    change = found["model-or-preprocessing-change"]
    assert change.reason.startswith("predictions moved: class ") and "while no input feature did" in change.reason


def test_predictions_that_follow_their_inputs_are_no_model_change(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    found = suggestions(window(reference, _served(model, features(600, seed=9, shift=1.0), 9)))
    assert "prediction-distribution-shift" in found and "model-or-preprocessing-change" not in found


def test_latency_breaches_are_serving_infrastructure_not_the_model(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = _served(model, features(600, seed=9), 9)
    current["__latency_ms__"] = np.random.default_rng(5).gamma(4.0, 120.0, 600)
    found = suggestions(window(reference, current), [("latency", {"max_ms": 250})])
    infra = found["serving-infrastructure"]
    assert infra.reason.startswith("latency p95 ") and "> 250 ms (serving path, not the model)" in infra.reason
    assert not {"covariate-shift", "concept-drift", "model-or-preprocessing-change"} & set(found)


def test_slow_but_within_bounds_serving_is_no_infrastructure_failure(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = _served(model, features(600, seed=9), 9)
    current["__latency_ms__"] = np.random.default_rng(5).gamma(4.0, 30.0, 600)
    assert "serving-infrastructure" not in suggestions(window(reference, current), [("latency", {"max_ms": 250})])


def test_healthy_traffic_suggests_nothing(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    assert suggestions(window(reference, _served(model, features(600, seed=9), 9))) == {}


def test_extra_sources_merge_into_one_suggestion_per_tag_the_most_confident_winning() -> None:
    from postmortems.diagnosis.evidence import Suggestion
    from postmortems.diagnosis.suggest import from_signatures

    evidence = Evidence(numbers={"features": {"x": {"type": "numeric", "p": 1e-40, "missing": 0.0,
                                                     "unit": {"map": "×100 (fraction → percent)", "p_after": 0.5}}}})
    learned = Suggestion("unit-change", 0.99, "like incidents #3 and #7 (confirmed)", "learned")
    merged = diagnose(evidence, sources=[from_signatures, lambda session, e: [learned]])
    assert [s.tag for s in merged] == ["unit-change"] and merged[0].signature == "learned"
    assert PREDICTION  # the evidence needs no prediction numbers to diagnose a unit change


def test_accuracy_lost_to_a_unit_change_is_not_concept_drift(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = features(600, seed=9)
    current[LABEL] = labels(current, 9).astype(str)
    current["f1"] = current["f1"] * 1.8 + 32  # the model reads f1 in Fahrenheit: its answers and accuracy suffer
    found = suggestions(window(reference, _served(model, current, 9)))
    assert "f1 looks like the reference Celsius → Fahrenheit" in found["unit-change"].reason
    assert "kpi-degradation" in found and "concept-drift" not in found


def test_a_volume_drop_is_a_data_pipeline_failure(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = _served(model, features(120, seed=9), 9)  # a feed that used to bring ~600 events a window
    found = suggestions(window(reference, current, history_counts=(610, 590, 600, 605)), [("volume", {})])
    floor = "below the floor of 301 (volume_drop)"  # half the median of the previous windows, 602.5
    assert found["data-pipeline-failure"].reason == f"120 events in the window, {floor}"


def test_a_quieter_window_within_the_usual_range_is_no_pipeline_failure(trained: tuple[pd.DataFrame, Model]) -> None:
    reference, model = trained
    current = _served(model, features(450, seed=9), 9)  # a Sunday: fewer events, well above the floor
    found = suggestions(window(reference, current, history_counts=(610, 590, 600, 605)), [("volume", {})])
    assert "data-pipeline-failure" not in found and "broken-join" not in found


def test_measured_numbers_hold_no_nan_for_postgresql_json() -> None:
    from postmortems.diagnosis.numbers import finite

    assert finite({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": 2}}) == {"a": None, "b": [1.0, None],
                                                                                     "c": {"d": 2}}


def _regressor_evidence(moved: bool) -> Evidence:
    """A regressor's evidence (no label-free estimate): MAE from labels doubled; inputs moved or not."""
    features = {"x": {"type": "numeric", "p": 1e-12 if moved else 0.4, "missing": 0.0}, "y": {"type": "numeric",
                                                                                              "p": 0.6}}
    kpi = {"metric": "mae", "reference": 1.1, "measured": 2.3, "labelled": 400}
    return Evidence(numbers={"features": features, "kpi": kpi, "prediction": {"p": 0.3}})


def test_a_regressor_worse_on_unmoved_inputs_is_concept_drift() -> None:
    found = {s.tag: s for s in diagnose(_regressor_evidence(moved=False))}
    assert found["concept-drift"].reason == "mae 2.3 from labels vs 1.1 on the reference, with no input shift"
    assert "covariate-shift" not in found


def test_a_regressor_worse_on_moved_inputs_is_not_called_concept_drift_with_confidence() -> None:
    found = {s.tag: s for s in diagnose(_regressor_evidence(moved=True))}
    assert found["concept-drift"].confidence == found["covariate-shift"].confidence == 0.4
    assert "no label-free estimate to tell how much the shift explains" in found["concept-drift"].reason
