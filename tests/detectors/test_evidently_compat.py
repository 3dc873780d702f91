"""The evidently-compatible mode against Evidently 0.7 itself: same test, same statistic (1e-6), same verdicts."""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import DATASET, Window
from detectors.evidently_compat import EvidentlyCompatibleDrift, sturges_edges
from detectors.profile import profile_reference

METHODS = {"K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z",
           "Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
           "jensenshannon": "jensenshannon"}  # a method passed by name is echoed as given
SCHEMA: dict[str, Any] = {"smooth": "numeric", "shifted": "numeric", "few": "numeric", "two": "numeric",
                          "colour": "categorical", "flag": "categorical"}


def _frame(rng: np.random.Generator, n: int, drift: float) -> pd.DataFrame:
    frame = pd.DataFrame({
        "smooth": rng.normal(0, 1, n),
        "shifted": rng.normal(drift, 1 + drift, n),
        "few": rng.integers(0, 4 + int(drift > 0.2), n).astype(float),  # <= 5 distinct values: chi-square / JS
        "two": rng.integers(0, 2, n).astype(float),  # binary numeric: z / JS
        "colour": rng.choice(["red", "green", "blue", "grey"][: 3 + int(drift > 0.1)], n,
                             p=None if drift > 0.1 else [0.5 - drift, 0.3, 0.2 + drift]),
        "flag": rng.choice(["no", "yes"], n, p=[0.7 - drift / 2, 0.3 + drift / 2]),
    })
    frame.loc[rng.random(n) < 0.05, "smooth"] = np.nan  # dropped by both
    return frame


def _evidently(reference: pd.DataFrame, current: pd.DataFrame, **preset: Any) -> tuple[dict[str, Any], float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=[c for c, k in SCHEMA.items() if k == "numeric"],
                                categorical_columns=[c for c, k in SCHEMA.items() if k == "categorical"])
    snapshot = Report([DataDriftPreset(**preset)]).run(Dataset.from_pandas(current, data_definition=definition),
                                                      Dataset.from_pandas(reference, data_definition=definition))
    columns, share = {}, float("nan")
    for metric in snapshot.dict()["metrics"]:
        if metric["config"]["type"].endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
        else:
            columns[metric["config"]["column"]] = (METHODS[metric["config"]["method"]], metric["value"],
                                                   metric["config"]["threshold"])
    return columns, share


def _drifted(method: str, value: float, threshold: float) -> bool:
    if method == "ks":
        return value <= threshold
    return value < threshold if method in ("chisquare", "z") else value >= threshold


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([60, 400, 1000, 1001, 2500]), st.integers(30, 1500),
       st.sampled_from([0.0, 0.05, 0.15, 0.4]))
def test_same_tests_statistics_and_verdicts_as_evidently(seed: int, n_ref: int, n_cur: int, drift: float) -> None:
    rng = np.random.default_rng(seed)
    reference, current = _frame(rng, n_ref, 0.0), _frame(rng, n_cur, drift)
    expected, expected_share = _evidently(reference, current)
    findings = {f.feature: f for f in EvidentlyCompatibleDrift().run(Window(reference, current, SCHEMA))}
    for column, (method, value, threshold) in expected.items():
        got = findings[column]
        assert (got.test, got.engine) == (method, "evidently-compatible"), column
        assert got.score == pytest.approx(value, rel=1e-6, abs=1e-12), column
        assert got.breached == _drifted(method, value, threshold), column
    assert findings[DATASET].score == pytest.approx(expected_share)
    assert findings[DATASET].breached == (expected_share >= 0.5)


def test_jensen_shannon_on_numeric_uses_sturges_bins_over_both_samples() -> None:
    rng = np.random.default_rng(11)
    reference, current = _frame(rng, 3000, 0.0), _frame(rng, 2000, 0.3)
    expected, _ = _evidently(reference, current, num_method="jensenshannon", cat_method="jensenshannon")
    profile = profile_reference(reference, SCHEMA)
    findings = {f.feature: f for f in EvidentlyCompatibleDrift(numeric_method="jensenshannon").check(profile, current)}
    for column, (method, value, _) in expected.items():
        assert findings[column].test == method == "jensenshannon"
        assert findings[column].score == pytest.approx(value, rel=1e-6, abs=1e-12), column
    combined = pd.concat([reference["shifted"], current["shifted"]]).to_numpy()
    edges = sturges_edges(combined.min(), combined.max(), len(combined))
    assert np.array_equal(edges, np.histogram_bin_edges(combined, bins="sturges"))


def test_chisquare_is_goodness_of_fit_against_reference_proportions() -> None:
    from scipy import stats

    reference = pd.DataFrame({"colour": ["red"] * 50 + ["blue"] * 30 + ["green"] * 20})
    current = pd.DataFrame({"colour": ["red"] * 20 + ["blue"] * 20 + ["green"] * 10})
    profile = profile_reference(reference, {"colour": "categorical"})
    [finding, dataset] = EvidentlyCompatibleDrift().check(profile, current)
    # Sorted categories: blue, green, red. Expected counts are the reference shares times the current size.
    expected = stats.chisquare([20, 10, 20], [15, 10, 25]).pvalue
    two_sample = stats.chi2_contingency([[30, 20, 50], [20, 10, 20]], correction=False).pvalue
    assert finding.test == "chisquare" and finding.score == pytest.approx(expected, rel=1e-12)
    assert finding.score != pytest.approx(two_sample, rel=1e-3)
    assert dataset.feature == DATASET and dataset.breached == finding.breached
