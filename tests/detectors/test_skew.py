"""Training-serving skew: the same ids' features compared across two pipeline stages, with exact numbers."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from detectors import registry
from detectors.base import ID, Finding, InsufficientData, Window
from detectors.skew import FeatureSkew
from tests import factories
from tests.factories import BuiltModels

SCHEMA = {"x": "numeric", "c": "categorical"}


def _training(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({ID: [f"p{i}" for i in range(n)], "x": rng.normal(10, 2, n),
                         "c": np.where(np.arange(n) < n // 2, "a", "b")})


def _window(current: pd.DataFrame, **stages: pd.DataFrame) -> Window:
    reference = _training().drop(columns=ID)
    return Window(reference, current, SCHEMA, stages=stages)  # type: ignore[arg-type]


def _by_test(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    return {(f.feature, f.test): f for f in findings}


def test_mismatch_rate_and_coverage_are_exact() -> None:
    training = _training()
    serving = training.copy()
    serving.loc[[3, 50, 120], "x"] += 1.0  # 3 of 200 joined rows served a different value
    extra_ids = pd.DataFrame({ID: [f"new{i}" for i in range(50)], "x": 0.0, "c": "a"})  # never logged in training
    findings = _by_test(FeatureSkew().run(_window(pd.concat([serving, extra_ids]), training=training)))
    x = findings["x", "mismatch_rate"]
    assert x.score == pytest.approx(0.015) and x.threshold == 0.01 and x.breached and x.direction == "above"
    assert x.extra == {"joined": 200.0, "coverage": pytest.approx(0.8), "mismatched": 3.0}
    assert findings["c", "mismatch_rate"].score == 0.0 and not findings["c", "mismatch_rate"].breached
    assert findings["c", "linf"].score == 0.0
    assert findings["x", "wasserstein"].score < 0.1 and not findings["x", "wasserstein"].breached


def test_a_shifted_feature_has_its_normed_wasserstein_distance() -> None:
    training = _training()
    serving = training.assign(x=training["x"] + 0.5 * training["x"].std(ddof=0))  # half a std, every row
    findings = _by_test(FeatureSkew().run(_window(serving, training=training)))
    assert findings["x", "mismatch_rate"].score == 1.0
    assert findings["x", "wasserstein"].score == pytest.approx(0.5, rel=1e-9) and findings["x", "wasserstein"].breached
    js = _by_test(FeatureSkew(numeric_distance="jensen_shannon").run(_window(serving, training=training)))
    assert ("x", "wasserstein") not in js and js["x", "jensen_shannon"].score > 0.1


def test_categorical_linf_as_tfdv_computes_it() -> None:
    training = _training()
    serving = training.copy()
    serving.loc[:29, "c"] = "b"  # a: 100 -> 70 of 200
    findings = _by_test(FeatureSkew().run(_window(serving, training=training)))
    assert findings["c", "mismatch_rate"].score == pytest.approx(0.15)
    assert findings["c", "linf"].score == pytest.approx(0.15) and findings["c", "linf"].breached


def test_tolerances_and_missing_values() -> None:
    training = _training()
    serving = training.copy()
    serving["x"] = serving["x"].astype(np.float32).astype(np.float64)  # float32 at serving: within rel_tol
    assert FeatureSkew().run(_window(serving, training=training))[0].score == 0.0
    serving.loc[:9, "x"] += 0.4
    assert _by_test(FeatureSkew().run(_window(serving, training=training)))["x", "mismatch_rate"].score == 0.05
    assert _by_test(FeatureSkew(abs_tol=0.5).run(_window(serving, training=training)))["x", "mismatch_rate"].score == 0
    # rel_tol scales with the baseline value: 0.4 is more than 10% of 1 but within 10% of 10.
    small = training[:10].assign(x=[1.0] * 5 + [10.0] * 5)
    rel = FeatureSkew(abs_tol=0, rel_tol=0.1, min_joined=1).run(_window(small.assign(x=small["x"] + 0.4),
                                                                         training=small))
    assert rel[0].score == 0.5
    training.loc[:4, "x"] = np.nan
    serving.loc[:2, "x"] = np.nan  # NaN on both sides agrees, NaN against a number does not
    findings = _by_test(FeatureSkew(abs_tol=0.5).run(_window(serving, training=training)))
    assert findings["x", "mismatch_rate"].extra["mismatched"] == 2.0


def test_categoricals_compare_as_text() -> None:
    training = _training().assign(c=[1.0, np.nan] * 100)  # integer codes with gaps: pandas keeps them as floats
    serving = training.assign(c=["1", None] * 100)
    findings = _by_test(FeatureSkew().run(_window(serving, training=training)))
    assert findings["c", "mismatch_rate"].score == 0.0 and findings["c", "linf"].score == 0.0
    serving.loc[:3, "c"] = "one"  # two against 1.0, two against a missing value
    assert _by_test(FeatureSkew().run(_window(serving, training=training)))["c", "mismatch_rate"].score == 0.02


def test_the_same_detector_compares_any_two_stages() -> None:
    generation = _training()
    ingestion = generation.copy()
    ingestion.loc[:19, "c"] = "A"  # upper-cased on the way in
    serving = pd.DataFrame({"x": [1.0], "c": ["a"]})  # not used: no id column needed when serving is not compared
    detector = FeatureSkew(baseline_stage="generation", compare_stage="ingestion")
    findings = _by_test(detector.run(_window(serving, generation=generation, ingestion=ingestion)))
    assert findings["c", "mismatch_rate"].score == pytest.approx(0.1) and findings["c", "mismatch_rate"].breached
    assert findings["x", "mismatch_rate"].score == 0.0


def test_missing_stage_or_too_few_joined_rows_is_insufficient_data() -> None:
    training = _training()
    with pytest.raises(InsufficientData, match="'training'"):
        FeatureSkew().run(_window(training))
    with pytest.raises(InsufficientData, match="'ingestion'"):
        FeatureSkew(compare_stage="ingestion").run(_window(training, training=training))
    with pytest.raises(InsufficientData, match="29 ids found in both training and serving, need 30"):
        FeatureSkew().run(_window(training[:29], training=training))
    with pytest.raises(InsufficientData, match="no __id__ column"):
        FeatureSkew().run(_window(training.drop(columns=ID), training=training))


def test_duplicate_ids_in_a_stage_log_last_logged_wins() -> None:
    training = _training()
    serving = training.copy()
    corrected = training[training[ID] == "p7"]
    stale = corrected.assign(x=-100.0)
    # A stale value logged first, the corrected one last: no skew.
    first_stale = pd.concat([stale, training])
    assert _by_test(FeatureSkew().run(_window(serving, training=first_stale)))["x", "mismatch_rate"].score == 0.0
    # Logged in the other order, the stale value wins and p7 counts once among 200 joined rows.
    last_stale = pd.concat([training, stale])
    finding = _by_test(FeatureSkew().run(_window(serving, training=last_stale)))["x", "mismatch_rate"]
    assert finding.score == pytest.approx(1 / 200) and finding.extra["joined"] == 200.0


def test_integer_ids_join_string_ids() -> None:
    training = _training().assign(**{ID: range(200)})
    serving = training.assign(**{ID: [str(i) for i in range(200)]})
    assert _by_test(FeatureSkew().run(_window(serving, training=training)))["x", "mismatch_rate"].extra[
        "joined"] == 200.0


@pytest.mark.parametrize(("params", "field"), [
    ({"max_mismatch_rate": 1.5}, "max_mismatch_rate"),
    ({"abs_tol": -1}, "abs_tol"),
    ({"rel_tol": -0.1}, "rel_tol"),
    ({"max_distance": 0}, "max_distance"),
    ({"numeric_distance": "ks"}, "numeric_distance"),
    ({"min_joined": 0}, "min_joined"),
    ({"baseline_stage": ""}, "baseline_stage"),
    ({"stage": "training"}, "stage"),
])
def test_bad_params_name_the_field(params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        registry.build("feature_skew", params)
    assert error.value.errors()[0]["loc"][0] == field


def test_a_bad_param_through_the_api_is_a_422_naming_it(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    response = client.put("/models/churn/monitors/default", json={"detectors": [
        {"name": "feature_skew", "params": {"max_mismatch_rate": 2}}]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["body.detectors.0.params.max_mismatch_rate"]
