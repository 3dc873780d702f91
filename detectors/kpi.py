"""Model KPIs on labelled serving rows, compared with a fixed bound and with the same KPI on the reference rows.

Labels arrive late: with `label_delay_s`, only rows served at least that long before the window's end count, so a
window's newest rows (whose labels cannot be in yet) neither dilute the coverage nor bias the metric towards the
rows that get labelled first. Every finding's `extra` says how many rows were labelled out of how many eligible.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from detectors import kpi_metrics as m
from detectors.base import LABEL, PREDICTION, TS, Detector, DetectorKind, Finding, InsufficientData, Window
from detectors.registry import register

NO_BASELINE = "the reference rows cannot give this KPI (no labels or probabilities); set a fixed bound"


def served_before(window: Window, label_delay_s: float) -> pd.DataFrame:
    """Current rows served at least `label_delay_s` before the window's end (the last served time if unset)."""
    current = window.current
    if label_delay_s <= 0:
        return current
    if TS not in current:
        raise InsufficientData("label_delay_s needs the served time of each event, and the window has none")
    served = pd.to_datetime(current[TS], utc=True)
    end = pd.Timestamp(window.end) if window.end is not None else served.max()
    if pd.isna(end):
        return current.iloc[:0]
    return current[served <= end - timedelta(seconds=label_delay_s)]


def usable(frame: pd.DataFrame, *, numeric: bool = False, probas: bool = False) -> pd.DataFrame:
    """Rows with a label and a prediction (both finite numbers if `numeric`, all class probabilities if `probas`)."""
    if LABEL not in frame or PREDICTION not in frame:
        return frame.iloc[:0]
    if numeric:
        frame = frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce").astype(np.float64)
                                for c in (LABEL, PREDICTION)})
        keep = np.isfinite(frame[LABEL]) & np.isfinite(frame[PREDICTION])
    else:
        keep = frame[LABEL].notna() & frame[PREDICTION].notna()
    if probas:
        keep &= m.proba_frame(frame).notna().all(axis=1)
    return frame[keep]


def labelled_rows(window: Window, label_delay_s: float, min_labels: int, *, numeric: bool = False,
                  probas: bool = False) -> tuple[pd.DataFrame, dict[str, float]]:
    """The usable labelled rows old enough to have their label, and the coverage; InsufficientData below min."""
    eligible = served_before(window, label_delay_s)
    frame = usable(eligible, numeric=numeric, probas=probas)
    n, total = len(frame), len(eligible)
    if n < min_labels:
        delay = f" served at least {label_delay_s:g}s before the window end" if label_delay_s > 0 else ""
        raise InsufficientData(f"{n} labelled events of {total}{delay}, need {min_labels}")
    return frame, {"labelled": float(n), "eligible": float(total), "coverage": n / total}


def floor(min_value: float | None, max_drop: float | None, reference: float | None) -> float:
    """The highest of `min_value` and `reference - max_drop` that can be computed (higher is better)."""
    floors = [v for v in (min_value, None if reference is None or max_drop is None else reference - max_drop)
              if v is not None]
    if not floors:
        raise InsufficientData(NO_BASELINE)
    return max(floors)


def ceiling(max_value: float | None, max_increase: float | None, reference: float | None) -> float:
    """The lowest of `max_value` and `reference * (1 + max_increase)` that can be computed (lower is better)."""
    ceilings = [v for v in (max_value, None if reference is None or max_increase is None
                            else reference * (1 + max_increase)) if v is not None]
    if not ceilings:
        raise InsufficientData(NO_BASELINE)
    return min(ceilings)


def on_reference(score: Callable[[pd.DataFrame], float], reference: pd.DataFrame, extra: dict[str, float],
                 key: str = "reference_value") -> float | None:
    """The KPI on the reference's usable rows, also noted in `extra`; None where it has none or it is undefined."""
    value = score(reference) if len(reference) else float("nan")
    if np.isnan(value):
        return None
    extra[key] = value
    return value


def accuracy_of(frame: pd.DataFrame) -> float:
    """Accuracy of usable labelled rows."""
    return m.accuracy(m.class_names(frame[LABEL]), m.class_names(frame[PREDICTION]))


def classifier_only(window: Window, name: str) -> None:
    """InsufficientData unless the window is a classifier's."""
    if window.task != "classification":
        raise InsufficientData(f"{name} applies to classifiers only")


@register
class Accuracy(Detector):
    """Classifier accuracy on labelled serving rows; breach below a floor or after a drop from reference."""

    name: ClassVar[str] = "accuracy"
    kind: ClassVar[DetectorKind] = DetectorKind.KPI
    min_labels: int = Field(default=30, gt=0)
    label_delay_s: float = Field(default=0, ge=0, description="Only rows served this long before the end count")
    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    max_drop: float | None = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _one_rule(self) -> "Accuracy":
        if self.min_accuracy is None and self.max_drop is None:
            raise ValueError("set min_accuracy or max_drop")
        return self

    def run(self, window: Window) -> list[Finding]:
        classifier_only(window, "accuracy")
        current, extra = labelled_rows(window, self.label_delay_s, self.min_labels)
        score = accuracy_of(current)
        baseline = on_reference(accuracy_of, usable(window.reference), extra, "reference_accuracy")
        threshold = floor(self.min_accuracy, self.max_drop, baseline)
        return [Finding(self.name, self.engine, "accuracy", "accuracy", score=score, threshold=threshold,
                        breached=score < threshold, statistic=score, extra=extra)]


@register
class ClassificationKPI(Detector):
    """Precision, recall, F1 or ROC AUC on labelled serving rows; breach below a floor or after a drop from reference.

    `average="binary"` scores `positive_class` against all others; macro and weighted average over the classes
    (ROC AUC one-vs-rest over the probability columns). ROC AUC needs the model's class probabilities.
    """

    name: ClassVar[str] = "classification_kpi"
    kind: ClassVar[DetectorKind] = DetectorKind.KPI
    metric: Literal["accuracy", "precision", "recall", "f1", "roc_auc"]
    average: m.Average = "binary"
    positive_class: str = Field(default="1", min_length=1, description="Compared with labels as a string")
    min_labels: int = Field(default=30, gt=0)
    label_delay_s: float = Field(default=0, ge=0, description="Only rows served this long before the end count")
    min_value: float | None = Field(default=None, ge=0, le=1)
    max_drop: float | None = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _one_rule(self) -> "ClassificationKPI":
        if self.min_value is None and self.max_drop is None:
            raise ValueError("set min_value or max_drop")
        return self

    @property
    def label(self) -> str:
        """The metric as reported in findings, e.g. 'f1 (class 1)' or 'recall (macro)'."""
        scope = f"class {self.positive_class}" if self.average == "binary" else self.average
        return f"{self.metric} ({scope})" if self.metric != "accuracy" else "accuracy"

    def score(self, frame: pd.DataFrame) -> float:
        """The metric on usable labelled rows; NaN where it is undefined."""
        labels, predictions = m.class_names(frame[LABEL]), m.class_names(frame[PREDICTION])
        if self.metric == "accuracy":
            return m.accuracy(labels, predictions)
        if self.metric == "roc_auc":
            return m.roc_auc(labels, m.proba_frame(frame), self.average, self.positive_class)
        return m.precision_recall_f1(labels, predictions, self.metric, self.average, self.positive_class)

    def run(self, window: Window) -> list[Finding]:
        classifier_only(window, self.metric)
        needs_probas = self.metric == "roc_auc"
        if needs_probas and not window.proba_columns:
            raise InsufficientData("roc_auc needs class probabilities and the model reports none")
        current, extra = labelled_rows(window, self.label_delay_s, self.min_labels, probas=needs_probas)
        score = self.score(current)
        if np.isnan(score):
            raise InsufficientData(f"{self.label} is undefined on these rows: a class it needs is missing from the "
                                   "labels, the predictions or the probability columns")
        baseline = on_reference(self.score, usable(window.reference, probas=needs_probas), extra)
        threshold = floor(self.min_value, self.max_drop, baseline)
        return [Finding(self.name, self.engine, self.metric, self.label, score=score, threshold=threshold,
                        breached=score < threshold, statistic=score, extra=extra)]


@register
class LogLoss(Detector):
    """Log loss of the class probabilities on labelled serving rows (lower is better): above a ceiling breaches.

    The ceiling is `max_value` and/or the reference's log loss times (1 + `max_increase`).
    """

    name: ClassVar[str] = "log_loss"
    kind: ClassVar[DetectorKind] = DetectorKind.KPI
    min_labels: int = Field(default=30, gt=0)
    label_delay_s: float = Field(default=0, ge=0, description="Only rows served this long before the end count")
    max_value: float | None = Field(default=None, gt=0)
    max_increase: float | None = Field(default=0.2, ge=0, description="Relative to the reference's log loss")

    @model_validator(mode="after")
    def _one_rule(self) -> "LogLoss":
        if self.max_value is None and self.max_increase is None:
            raise ValueError("set max_value or max_increase")
        return self

    @staticmethod
    def score(frame: pd.DataFrame) -> float:
        """Log loss of usable labelled rows with probabilities (NaN without probability columns)."""
        return m.log_loss(m.class_names(frame[LABEL]), m.proba_frame(frame))

    def run(self, window: Window) -> list[Finding]:
        classifier_only(window, "log_loss")
        if not window.proba_columns:
            raise InsufficientData("log_loss needs class probabilities and the model reports none")
        current, extra = labelled_rows(window, self.label_delay_s, self.min_labels, probas=True)
        score = self.score(current)
        baseline = on_reference(self.score, usable(window.reference, probas=True), extra)
        threshold = ceiling(self.max_value, self.max_increase, baseline)
        return [Finding(self.name, self.engine, "log_loss", "log_loss", score=score, threshold=threshold,
                        breached=score > threshold, direction="above", statistic=score, extra=extra)]


@register
class RegressionKPI(Detector):
    """MAE, RMSE or MAPE of numeric labels vs predictions (lower is better): above a ceiling breaches.

    The ceiling is `max_value` and/or the reference's value times (1 + `max_increase`). MAPE leaves out rows whose
    label is 0 (their percentage error is undefined) and says how many in `extra["zero_labels_excluded"]`.
    """

    name: ClassVar[str] = "regression_kpi"
    kind: ClassVar[DetectorKind] = DetectorKind.KPI
    metric: Literal["mae", "rmse", "mape"]
    min_labels: int = Field(default=30, gt=0)
    label_delay_s: float = Field(default=0, ge=0, description="Only rows served this long before the end count")
    max_value: float | None = Field(default=None, ge=0)
    max_increase: float | None = Field(default=0.2, ge=0, description="Relative to the reference's value")

    @model_validator(mode="after")
    def _one_rule(self) -> "RegressionKPI":
        if self.max_value is None and self.max_increase is None:
            raise ValueError("set max_value or max_increase")
        return self

    def score(self, frame: pd.DataFrame) -> tuple[float, int]:
        """The metric on usable numeric rows, and the zero labels MAPE left out."""
        return m.regression_error(frame[LABEL].to_numpy(), frame[PREDICTION].to_numpy(), self.metric)

    def run(self, window: Window) -> list[Finding]:
        if window.task != "regression":
            raise InsufficientData(f"{self.metric} applies to regressors only")
        current, extra = labelled_rows(window, self.label_delay_s, self.min_labels, numeric=True)
        score, excluded = self.score(current)
        if self.metric == "mape":
            extra["zero_labels_excluded"] = float(excluded)
            if np.isnan(score):
                raise InsufficientData(f"every one of the {excluded} labels is 0, so MAPE is undefined")
        baseline = on_reference(lambda f: self.score(f)[0], usable(window.reference, numeric=True), extra)
        threshold = ceiling(self.max_value, self.max_increase, baseline)
        return [Finding(self.name, self.engine, self.metric, self.metric, score=score, threshold=threshold,
                        breached=score > threshold, direction="above", statistic=score, extra=extra)]
