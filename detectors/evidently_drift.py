"""Per-feature drift computed by Evidently 0.7 (`ValueDrift`), turned into Findings.

Evidently is imported inside `run`: importing it costs seconds, and the API and CLI must start fast.
"""

from typing import ClassVar, Literal

import pandas as pd
from pydantic import Field

from detectors.base import Detector, DetectorKind, Finding, Window, per_test_alpha
from detectors.registry import register

# Evidently methods whose value is a p-value (drift when below the threshold).
PValueMethod = Literal["ks", "chisquare", "z", "fisher_exact", "cramer_von_mises", "anderson", "mannw", "t_test"]


@register
class EvidentlyDrift(Detector):
    """Evidently's statistical tests per feature, chosen by type, with one p-value threshold."""

    name: ClassVar[str] = "evidently_drift"
    kind: ClassVar[DetectorKind] = DetectorKind.INPUT_DRIFT
    engine: ClassVar[str] = "evidently"
    numeric_method: PValueMethod = "ks"
    categorical_method: PValueMethod = "chisquare"
    p_value: float = Field(default=0.05, gt=0, lt=1, description="Family-wise significance level")
    correction: Literal["bonferroni", "none"] = "bonferroni"

    def run(self, window: Window) -> list[Finding]:
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift

        numeric, categorical = window.columns_of("numeric"), window.columns_of("categorical")
        methods = dict.fromkeys(numeric, self.numeric_method) | dict.fromkeys(categorical, self.categorical_method)
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        metrics = [ValueDrift(column=c, method=m, threshold=self.p_value) for c, m in methods.items()]

        def dataset(frame: pd.DataFrame) -> Dataset:
            frame = frame[list(methods)].copy()
            frame[categorical] = frame[categorical].astype(str)
            return Dataset.from_pandas(frame, data_definition=definition)

        snapshot = Report(metrics).run(dataset(window.current), dataset(window.reference))
        values = {m["config"]["column"]: float(m["value"]) for m in snapshot.dict()["metrics"]}
        alpha = per_test_alpha(self.p_value, len(values), self.correction)
        return [
            Finding(self.name, self.engine, methods[c], c, score=p, threshold=alpha, breached=p < alpha, p_value=p)
            for c, p in values.items()
        ]
