"""Model KPIs on labelled serving rows, compared with the same KPI on the reference data."""

from typing import ClassVar

import pandas as pd
from pydantic import Field, model_validator

from detectors.base import LABEL, PREDICTION, Detector, Finding, InsufficientData, Window
from detectors.registry import register


def accuracy(labels: pd.Series, predictions: pd.Series) -> float:
    """Share of predictions equal to their label, compared as strings (labels arrive as JSON)."""
    return float((labels.astype(str).to_numpy() == predictions.astype(str).to_numpy()).mean())


@register
class Accuracy(Detector):
    """Classifier accuracy on labelled serving rows; breach below a floor or after a drop from reference."""

    name: ClassVar[str] = "accuracy"
    min_labels: int = Field(default=30, gt=0)
    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    max_drop: float | None = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _one_rule(self) -> "Accuracy":
        if self.min_accuracy is None and self.max_drop is None:
            raise ValueError("set min_accuracy or max_drop")
        return self

    def run(self, window: Window) -> list[Finding]:
        if window.task != "classification":
            raise InsufficientData("accuracy applies to classifiers only")
        current = window.current.dropna(subset=[LABEL]) if LABEL in window.current else window.current.iloc[:0]
        if len(current) < self.min_labels:
            raise InsufficientData(f"{len(current)} labelled events, need {self.min_labels}")
        score = accuracy(current[LABEL], current[PREDICTION])
        extra: dict[str, float] = {"labelled": float(len(current))}
        threshold = self.min_accuracy if self.min_accuracy is not None else 0.0
        if self.max_drop is not None and LABEL in window.reference:
            reference = window.reference.dropna(subset=[LABEL])
            baseline = accuracy(reference[LABEL], reference[PREDICTION])
            extra["reference_accuracy"] = baseline
            threshold = max(threshold, baseline - self.max_drop)
        return [Finding(self.name, self.engine, "accuracy", "accuracy", score=score, threshold=threshold,
                        breached=score < threshold, statistic=score, extra=extra)]
