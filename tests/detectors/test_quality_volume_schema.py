"""Volume against the expected rate, schema mismatches (refused at ingest or wrong in the frame), infinite values."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from detectors import registry
from detectors.base import DATASET, ID, PREDICTION, Finding, InsufficientData, Window
from detectors.non_finite import NonFinite
from detectors.quality import MissingValues
from detectors.schema_check import SchemaMismatch
from detectors.volume import Volume
from tests import factories
from tests.factories import BuiltModels

SCHEMA = {"x": "numeric", "y": "numeric", "c": "categorical"}
START = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({ID: [f"p{i}" for i in range(n)], "x": rng.normal(0, 1, n), "y": rng.normal(0, 1, n),
                         "c": rng.choice(["a", "b"], size=n), PREDICTION: rng.integers(0, 2, n)})


def _window(current: pd.DataFrame, hours: float | None = None, history: tuple[int, ...] = (),
            rejected: pd.DataFrame | None = None) -> Window:
    end = START + timedelta(hours=hours) if hours is not None else None
    return Window(_frame(500, seed=1), current, SCHEMA, start=START if hours is not None else None,  # type: ignore[arg-type]
                  end=end, history_counts=history, rejected=rejected)


def _volume(detector: Volume, window: Window) -> tuple[Finding, Finding]:
    drop, spike = detector.run(window)
    assert (drop.test, spike.test) == ("volume_drop", "volume_spike")
    assert drop.feature == spike.feature == DATASET and (drop.direction, spike.direction) == ("below", "above")
    return drop, spike


def test_volume_against_a_static_rate() -> None:
    detector = Volume(expected_per_hour=100, max_drop=0.5, max_spike=1.0)
    drop, spike = _volume(detector, _window(_frame(80), hours=2))
    assert drop.score == 80 and drop.threshold == 100 and drop.breached and not spike.breached
    assert spike.threshold == 400
    assert drop.extra == {"expected": 200.0, "expected_per_hour": 100.0, "window_hours": 2.0, "ratio": 0.4}
    drop, spike = _volume(detector, _window(_frame(401), hours=2))
    assert spike.breached and not drop.breached and spike.extra["ratio"] == pytest.approx(401 / 200)
    assert not any(f.breached for f in _volume(detector, _window(_frame(200), hours=2)))


def test_a_dead_feed_is_a_drop_not_missing_data() -> None:
    drop, spike = _volume(Volume(expected_per_hour=60), _window(pd.DataFrame(), hours=0.5))
    assert drop.score == 0 and drop.threshold == 15 and drop.breached and not spike.breached


def test_volume_learns_the_expected_count_from_history() -> None:
    detector = Volume(min_history=3)
    drop, spike = _volume(detector, _window(_frame(40), history=(100, 120, 90, 300)))
    assert drop.extra == {"expected": 110.0, "history_windows": 4.0, "ratio": pytest.approx(40 / 110)}
    assert drop.threshold == 55 and drop.breached and spike.threshold == 220
    with pytest.raises(InsufficientData, match="2 previous windows, need 3"):
        detector.run(_window(_frame(40), history=(100, 120)))


def test_a_static_rate_needs_the_window_bounds() -> None:
    with pytest.raises(InsufficientData, match="start and end"):
        Volume(expected_per_hour=10).run(_window(_frame(10)))
    with pytest.raises(InsufficientData, match="positive span"):
        Volume(expected_per_hour=10).run(_window(_frame(10), hours=0))


def _rejected(*rows: tuple[str, str, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["kind", "feature", "count"])


def test_a_clean_window_gives_one_ok_finding() -> None:
    for rejected in (None, _rejected()):
        [finding] = SchemaMismatch().run(_window(_frame(50), rejected=rejected))
        assert (finding.test, finding.feature, finding.score, finding.breached) == ("schema_ok", DATASET, 0.0, False)
        assert finding.extra == {"events": 50.0}
    [empty] = SchemaMismatch().run(_window(pd.DataFrame()))
    assert empty.test == "schema_ok" and empty.extra == {"events": 0.0}


def test_ingest_rejections_as_a_share_of_all_events() -> None:
    rejected = _rejected(("missing", "x", 3), ("wrong_type", "c", 3), ("missing", "x", 2), ("extra", "z", 0))
    window = _window(_frame(92), rejected=rejected)
    findings = {(f.test, f.feature): f for f in SchemaMismatch(max_share=0.04).run(window)}
    assert set(findings) == {("missing", "x"), ("wrong_type", "c")}
    assert findings["missing", "x"].score == pytest.approx(0.05) and findings["missing", "x"].breached
    assert findings["missing", "x"].extra == {"rejected": 5.0, "accepted": 0.0, "events": 100.0}
    assert findings["wrong_type", "c"].score == pytest.approx(0.03) and not findings["wrong_type", "c"].breached


def test_the_frame_itself_is_checked_for_absent_extra_and_mistyped_features() -> None:
    current = _frame(20).drop(columns="y").assign(z=[1.0] * 5 + [None] * 15)
    current["x"] = current["x"].astype(object)
    current.loc[:1, "x"] = "12.5"  # a number sent as text
    current.loc[2, "x"] = True
    current.loc[3, "x"] = None  # missing, not mistyped
    current["c"] = current["c"].astype(object)
    current.loc[0, "c"] = ["a"]  # a list where a label belongs
    findings = {(f.test, f.feature): f for f in SchemaMismatch().run(
        _window(current, rejected=_rejected(("wrong_type", "x", 5))))}
    assert findings["missing", "y"].score == pytest.approx(20 / 25)  # every accepted row lacks it
    assert findings["wrong_type", "x"].extra == {"rejected": 5.0, "accepted": 3.0, "events": 25.0}
    assert findings["wrong_type", "c"].score == pytest.approx(1 / 25)
    assert findings["extra", "z"].score == pytest.approx(5 / 25)
    assert all(f.breached for f in findings.values()) and len(findings) == 4  # ID and PREDICTION are not extra


def test_infinite_values_are_reported_apart_from_missing_ones() -> None:
    current = _frame(200)
    current.loc[:1, "x"] = np.inf
    current.loc[2, "x"] = -np.inf
    current.loc[3:6, "x"] = np.nan
    findings = {f.feature: f for f in NonFinite().run(_window(current))}
    assert set(findings) == {"x", "y"}  # numeric features only
    assert findings["x"].score == pytest.approx(3 / 200) and findings["x"].breached
    assert findings["x"].extra == {"pos_inf": 2.0, "neg_inf": 1.0, "reference_share": 0.0}
    assert findings["y"].score == 0 and not findings["y"].breached
    missing = {f.feature: f for f in MissingValues().run(_window(current))}
    assert missing["x"].score == pytest.approx(4 / 200)  # NaN only: inf is non_finite's
    assert not NonFinite(max_share=0.02).run(_window(current))[0].breached


@pytest.mark.parametrize(("name", "params", "field"), [
    ("volume", {"expected_per_hour": 0}, "expected_per_hour"),
    ("volume", {"min_history": 0}, "min_history"),
    ("volume", {"max_drop": 1.5}, "max_drop"),
    ("volume", {"max_spike": -1}, "max_spike"),
    ("schema_mismatch", {"max_share": -0.1}, "max_share"),
    ("schema_mismatch", {"kinds": ["missing"]}, "kinds"),
    ("non_finite", {"max_share": 2}, "max_share"),
])
def test_bad_params_name_the_field(name: str, params: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        registry.build(name, params)
    assert error.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(("name", "params", "field"), [
    ("volume", {"max_drop": 2}, "max_drop"),
    ("schema_mismatch", {"max_share": "all"}, "max_share"),
    ("non_finite", {"max_share": -1}, "max_share"),
])
def test_a_bad_param_through_the_api_is_a_422_naming_it(client: TestClient, models: BuiltModels, name: str,
                                                       params: dict[str, object], field: str) -> None:
    factories.register_tensor(client, models)
    response = client.put("/models/churn/monitors/default", json={"detectors": [{"name": name, "params": params}]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [f"body.detectors.0.params.{field}"]


def test_volume_and_schema_run_below_the_monitors_min_events() -> None:
    assert not registry.build("volume", {}).needs_events and not registry.build("schema_mismatch", {}).needs_events
