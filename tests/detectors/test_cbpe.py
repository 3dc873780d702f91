"""CBPE: a label-free accuracy estimate that tracks the real accuracy of real scikit-learn classifiers.

Tolerance: the estimate is the *expected* accuracy of the current rows, and their realised accuracy is one draw
around it with standard deviation sigma = sqrt(p(1-p)/n), the detector's `sampling_error` (0.008-0.011 here, n=2000).
Under a strong shift the calibration, fitted on reference rows that rarely sit near the decision boundary, adds its
own error. Over 20 seeds of these very set-ups |estimate - realised| had a standard deviation of 1.0 sigma without
shift and 1.3 sigma with it (largest 3.1 sigma), so we ask for 4 sigma (0.03-0.045): tight enough that the
over-confident model's uncalibrated estimate (off by 12-16 sigma) fails it. Seeds are fixed; the numbers quoted in
the tests are the ones they see.
"""

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from detectors.base import LABEL, PREDICTION, PROBA_PREFIX, Finding, InsufficientData, Window
from detectors.cbpe import EstimatedAccuracy, calibrate, expected_accuracy, fit_calibrators
from detectors.kpi_metrics import class_names, proba_frame

SCHEMA: dict[str, Any] = {"a": "numeric", "b": "numeric"}
SIGMAS = 4
COEF = np.array([[1.5, -1.0], [-0.5, 1.2], [0.0, 0.0]])


def sample(rng: np.random.Generator, n: int, scale: float, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ~ N(0, scale²) and labels drawn from a fixed logistic model: a smaller scale crowds the inputs
    near the decision boundary, so accuracy drops while P(label | input) stays put (covariate shift)."""
    x = rng.normal(0, scale, (n, 2))
    if classes == 2:
        return x, (rng.random(n) < 1 / (1 + np.exp(-(x @ COEF[0])))).astype(int)
    logits = x @ COEF.T
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return x, np.array([rng.choice(3, p=row) for row in p])


def served(model: Any, x: np.ndarray, y: np.ndarray, copies: int = 1) -> pd.DataFrame:
    """What the service logs: features, prediction, label and one probability column per class."""
    inputs = np.repeat(x, copies, axis=1)
    frame = pd.DataFrame(x, columns=["a", "b"]).assign(**{PREDICTION: model.predict(inputs), LABEL: y})
    for i, c in enumerate(model.classes_):
        frame[f"{PROBA_PREFIX}{c}"] = model.predict_proba(inputs)[:, i]
    return frame


def realised(frame: pd.DataFrame) -> float:
    return float((frame[LABEL] == frame[PREDICTION]).mean())


def tracks(finding: Finding, truth: float) -> bool:
    """The estimate is within SIGMAS sampling errors of the realised accuracy."""
    return abs(finding.score - truth) <= SIGMAS * finding.extra["sampling_error"]


@pytest.fixture(scope="module")
def logistic() -> tuple[LogisticRegression, pd.DataFrame, np.random.Generator]:
    rng = np.random.default_rng(0)
    model = LogisticRegression().fit(*sample(rng, 3000, 2.0))
    return model, served(model, *sample(rng, 3000, 2.0)), rng


def test_estimate_tracks_real_accuracy_and_breaches_only_when_it_drops(
        logistic: tuple[LogisticRegression, pd.DataFrame, np.random.Generator]) -> None:
    model, reference, rng = logistic
    healthy, shifted = served(model, *sample(rng, 2000, 2.0)), served(model, *sample(rng, 2000, 0.5))
    detector = EstimatedAccuracy(max_drop=0.05)
    ok = detector.run(Window(reference, healthy.assign(**{LABEL: None}), SCHEMA))[0]
    bad = detector.run(Window(reference, shifted.assign(**{LABEL: None}), SCHEMA))[0]
    for finding, frame in ((ok, healthy), (bad, shifted)):
        assert tracks(finding, realised(frame)) and "realised_accuracy" not in finding.extra  # no labels given
    # reference accuracy 0.859, floor 0.809; healthy: estimate 0.862 vs real 0.846 (2.0 sigma); shifted: 0.668 vs
    # real 0.658 (0.9 sigma)
    assert not ok.breached and bad.breached
    assert bad.threshold == pytest.approx(bad.extra["reference_accuracy"] - 0.05)
    assert realised(shifted) < realised(healthy) - 0.15 and bad.test == "cbpe"


def test_calibration_rescues_an_over_confident_model() -> None:
    # Naive Bayes on six copies of each feature counts the same evidence six times: far too sure of itself.
    rng = np.random.default_rng(1)
    x, y = sample(rng, 3000, 2.0)
    model = GaussianNB().fit(np.repeat(x, 6, axis=1), y)
    reference = served(model, *sample(rng, 3000, 2.0), copies=6)
    for scale in (2.0, 0.5):
        current = served(model, *sample(rng, 2000, scale), copies=6)
        window = Window(reference, current, SCHEMA)
        raw = EstimatedAccuracy(calibration="none").run(window)[0]
        calibrated = EstimatedAccuracy().run(window)[0]
        truth = calibrated.extra["realised_accuracy"]
        assert calibrated.extra["calibrated_classes"] == 2  # "auto" found the calibration helps
        assert raw.score - truth > 0.09  # raw 0.953 vs real 0.850 healthy, 0.835 vs 0.672 shifted
        assert tracks(calibrated, truth) and not tracks(raw, truth)
    # calibrated 0.848 and 0.634 (3.6 sigma, the worst case here); after the shift the raw estimate would even
    # miss the drop below the floor (0.798) that the calibrated one catches
    assert calibrated.breached and not raw.breached


def test_multiclass_estimate_tracks_real_accuracy() -> None:
    rng = np.random.default_rng(2)
    model = LogisticRegression().fit(*sample(rng, 3000, 2.0, classes=3))
    reference = served(model, *sample(rng, 3000, 2.0, classes=3))
    for scale, drop in ((2.0, False), (0.6, True)):  # estimate 0.804 vs real 0.805, then 0.574 vs 0.574
        current = served(model, *sample(rng, 2000, scale, classes=3))
        finding = EstimatedAccuracy().run(Window(reference, current, SCHEMA))[0]
        assert tracks(finding, realised(current)) and finding.breached == drop


def test_isotonic_calibration_matches_the_reference_frequencies(
        logistic: tuple[LogisticRegression, pd.DataFrame, np.random.Generator]) -> None:
    _, reference, _ = logistic
    labels, probas = class_names(reference[LABEL]), proba_frame(reference)
    calibrated = calibrate(probas, fit_calibrators(probas, labels, "isotonic"))
    assert np.allclose(calibrated.sum(axis=1), 1)
    # isotonic regression keeps each class's mean probability equal to its frequency; the accuracy estimate is
    # only close in-sample, as the fitted steps straddle the 0.5 where the predicted class flips
    estimate = expected_accuracy(calibrated, class_names(reference[PREDICTION]))
    assert calibrated["1"].mean() == pytest.approx((labels == "1").mean(), abs=1e-12)
    assert estimate == pytest.approx(realised(reference), abs=0.005)


def test_without_probabilities_or_enough_rows_it_is_insufficient_data(
        logistic: tuple[LogisticRegression, pd.DataFrame, np.random.Generator]) -> None:
    _, reference, _ = logistic
    current = reference.iloc[:500]
    no_probas = current.drop(columns=[c for c in current if c.startswith(PROBA_PREFIX)])
    with pytest.raises(InsufficientData, match="needs class probabilities and the model reports none"):
        EstimatedAccuracy().run(Window(reference, no_probas, SCHEMA))
    with pytest.raises(InsufficientData, match="^50 events with class probabilities, need 100$"):
        EstimatedAccuracy().run(Window(reference, current.iloc[:50], SCHEMA))
    with pytest.raises(InsufficientData, match="^0 reference rows with a label"):
        EstimatedAccuracy().run(Window(reference.assign(**{LABEL: None}), current, SCHEMA))
    with pytest.raises(InsufficientData, match="classifiers only"):
        EstimatedAccuracy().run(Window(reference, current, SCHEMA, task="regression"))
