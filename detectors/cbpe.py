"""Label-free accuracy estimate: NannyML's confidence-based performance estimation (CBPE).

On the reference rows (labels and class probabilities) each class's probability is calibrated one-vs-rest with an
isotonic regression onto "the label is this class"; calibrated rows are renormalised to sum to 1. A current row's
calibrated probability of its predicted class is then the chance the prediction is right, and their mean is the
expected accuracy, with no labels needed. It stays right under covariate shift (inputs move, P(label | input) does
not) and cannot see concept drift; labelled KPIs remain the ground truth.

Like NannyML, `calibration="auto"` calibrates a class only where it helps: when, over ten stratified 90/10 splits of
the reference, the isotonic fit lowers the expected calibration error (ten equal-count bins) on the held-out rows.
"""

from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedShuffleSplit

from detectors import kpi_metrics as m
from detectors.base import LABEL, PREDICTION, Detector, DetectorKind, Finding, InsufficientData, Window
from detectors.kpi import classifier_only, floor, usable
from detectors.registry import register

Calibration = Literal["auto", "isotonic", "none"]
BAND_SIGMAS = 3.0


def expected_calibration_error(outcomes: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-count bins of the sorted probabilities, weighted by bin size."""
    order = np.argsort(probabilities, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) * abs(float(probabilities[chunk].mean()) - float(outcomes[chunk].mean()))
    return error / len(probabilities)


def _isotonic(probabilities: np.ndarray, outcomes: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probabilities, outcomes)


def calibration_helps(probabilities: np.ndarray, outcomes: np.ndarray, splits: int = 10) -> bool:
    """NannyML's test: does isotonic calibration lower the held-out ECE over stratified 90/10 splits?"""
    counts = np.bincount(outcomes.astype(int), minlength=2)
    if counts.min() < 2 or m.binary_auc(outcomes.astype(bool), probabilities) > 0.999:
        return False  # one class (nothing to learn) or a near-perfect ranking (nothing to fix)
    held_out, raw, calibrated = [], [], []
    folds = StratifiedShuffleSplit(n_splits=splits, test_size=0.1, random_state=42)
    for train, test in folds.split(probabilities.reshape(-1, 1), outcomes):
        held_out.append(outcomes[test])
        raw.append(probabilities[test])
        calibrated.append(_isotonic(probabilities[train], outcomes[train]).predict(probabilities[test]))
    truth = np.concatenate(held_out)
    return expected_calibration_error(truth, np.concatenate(calibrated)) < expected_calibration_error(
        truth, np.concatenate(raw))


def fit_calibrators(probas: pd.DataFrame, labels: np.ndarray, mode: Calibration) -> dict[str, IsotonicRegression]:
    """One isotonic map per class that needs one (all of them for 'isotonic', none for 'none')."""
    calibrators = {}
    for name in probas.columns:
        outcomes = (labels == name).astype(np.float64)
        scores = probas[name].to_numpy()
        if mode == "isotonic" or (mode == "auto" and calibration_helps(scores, outcomes)):
            calibrators[name] = _isotonic(scores, outcomes)
    return calibrators


def calibrate(probas: pd.DataFrame, calibrators: dict[str, IsotonicRegression]) -> pd.DataFrame:
    """Calibrated probabilities, each row renormalised to sum to 1 (uniform where every class got 0)."""
    values = np.column_stack([calibrators[c].predict(probas[c].to_numpy()) if c in calibrators
                              else probas[c].to_numpy() for c in probas.columns])
    total = values.sum(axis=1, keepdims=True)
    uniform = np.full_like(values, 1.0 / values.shape[1])
    return pd.DataFrame(np.divide(values, total, out=uniform, where=total > 0), columns=probas.columns,
                        index=probas.index)


def expected_accuracy(probas: pd.DataFrame, predictions: np.ndarray) -> float:
    """Mean probability of the predicted class (0 for a prediction with no probability column)."""
    columns = {name: i for i, name in enumerate(probas.columns)}
    index = np.array([columns.get(p, -1) for p in predictions])
    values = probas.to_numpy()
    chosen = np.where(index >= 0, values[np.arange(len(values)), np.maximum(index, 0)], 0.0)
    return float(chosen.mean())


@register
class EstimatedAccuracy(Detector):
    """Accuracy estimated without labels from calibrated confidence (CBPE); breach below a floor or a drop.

    The floor is `min_value` and/or the reference's realised accuracy minus `max_drop`. `extra` carries the
    sampling error sqrt(p(1-p)/n) and the band estimate ± 3 sampling errors, and the realised accuracy of any
    current rows that already have labels.
    """

    name: ClassVar[str] = "estimated_accuracy"
    kind: ClassVar[DetectorKind] = DetectorKind.ESTIMATED_KPI
    min_rows: int = Field(default=100, gt=0, description="Current rows with probabilities needed for an estimate")
    min_reference_labels: int = Field(default=100, gt=0)
    calibration: Calibration = "auto"
    min_value: float | None = Field(default=None, ge=0, le=1)
    max_drop: float | None = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _one_rule(self) -> "EstimatedAccuracy":
        if self.min_value is None and self.max_drop is None:
            raise ValueError("set min_value or max_drop")
        return self

    def run(self, window: Window) -> list[Finding]:
        classifier_only(window, self.name)
        if not window.proba_columns:
            raise InsufficientData("estimated_accuracy needs class probabilities and the model reports none")
        reference = usable(window.reference, probas=True)
        classes = list(m.proba_frame(window.current).columns)
        reference_classes = list(m.proba_frame(reference).columns)
        if set(reference_classes) != set(classes):
            raise InsufficientData(f"the reference has probabilities of classes {sorted(reference_classes)}, "
                                   f"serving of {sorted(classes)}")
        if len(reference) < self.min_reference_labels:
            raise InsufficientData(f"{len(reference)} reference rows with a label and class probabilities, "
                                   f"need {self.min_reference_labels}")
        current = window.current[window.current[PREDICTION].notna()]
        current_probas = m.proba_frame(current).dropna()
        if len(current_probas) < self.min_rows:
            raise InsufficientData(f"{len(current_probas)} events with class probabilities, need {self.min_rows}")
        reference_labels = m.class_names(reference[LABEL])
        calibrators = fit_calibrators(m.proba_frame(reference)[classes], reference_labels, self.calibration)
        predictions = m.class_names(current.loc[current_probas.index, PREDICTION])
        estimate = expected_accuracy(calibrate(current_probas, calibrators), predictions)
        baseline = m.accuracy(reference_labels, m.class_names(reference[PREDICTION]))
        n = len(current_probas)
        sampling_error = float(np.sqrt(estimate * (1 - estimate) / n))
        extra = {"rows": float(n), "reference_accuracy": baseline, "calibrated_classes": float(len(calibrators)),
                 "sampling_error": sampling_error, "lower": max(0.0, estimate - BAND_SIGMAS * sampling_error),
                 "upper": min(1.0, estimate + BAND_SIGMAS * sampling_error)}
        extra |= realised(current.loc[current_probas.index])
        threshold = floor(self.min_value, self.max_drop, baseline)
        return [Finding(self.name, self.engine, "cbpe", "estimated_accuracy", score=estimate, threshold=threshold,
                        breached=estimate < threshold, statistic=estimate, extra=extra)]


def realised(current: pd.DataFrame) -> dict[str, float]:
    """Accuracy of the current rows that already have a label (empty when none has), to compare with the estimate."""
    labelled = usable(current)
    if labelled.empty:
        return {}
    return {"labelled": float(len(labelled)),
            "realised_accuracy": m.accuracy(m.class_names(labelled[LABEL]), m.class_names(labelled[PREDICTION]))}
