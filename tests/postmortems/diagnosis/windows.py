"""Windows built to show a failure signature (or to look like one), and the diagnosis of each, the real way:
the real detectors run on the window, their breached findings and the measured numbers form the evidence."""

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from detectors import registry
from detectors.base import ID, LABEL, PREDICTION, PROBA_PREFIX, FeatureType, InsufficientData, Window
from postmortems.diagnosis.evidence import Evidence, Suggestion
from postmortems.diagnosis.numbers import measure
from postmortems.diagnosis.suggest import diagnose
from watchtower.actions.open_incident import _finding

NUMERIC = ["f1", "f2", "f3"]


def features(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """f1..f3 standard normal (f1 and f2 moved by `shift`), session_length in seconds, temperature in Celsius."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.normal(0.0, 1.0, n) for f in NUMERIC})
    frame[["f1", "f2"]] += shift
    frame["session_length"] = rng.lognormal(4.0, 0.6, n)
    frame["temperature"] = rng.normal(18.0, 6.0, n)
    frame["color"] = rng.choice(["red", "green", "blue"], size=n, p=[0.5, 0.3, 0.2])
    return frame


SCHEMA: dict[str, FeatureType] = {**dict.fromkeys([*NUMERIC, "session_length", "temperature"], "numeric"),
                                  "color": "categorical"}


def labels(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """The world's rule: mostly f1 + f2 > 0, with some noise."""
    rng = np.random.default_rng(seed + 1000)
    logit = 2.5 * (frame["f1"] + frame["f2"])
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)


class Model:
    """A real classifier on f1, f2, f3, fitted on the reference."""

    def __init__(self, reference: pd.DataFrame) -> None:
        self.fit = LogisticRegression().fit(reference[NUMERIC], reference[LABEL])

    def score(self, frame: pd.DataFrame, offset: float = 0.0) -> pd.DataFrame:
        """The frame with PREDICTION and class probabilities; `offset` plays a preprocessing change that adds a
        constant to f1 inside the serving path (the logged inputs stay as they were)."""
        inputs = frame[NUMERIC].fillna(0.0).assign(f1=lambda f: f["f1"] + offset)
        proba = self.fit.predict_proba(inputs)
        scored = frame.assign(**{PREDICTION: proba.argmax(axis=1).astype(str)})
        for k, cls in enumerate(("0", "1")):
            scored[PROBA_PREFIX + cls] = proba[:, k]
        return scored


def reference_and_model(n: int = 2000) -> tuple[pd.DataFrame, Model]:
    reference = features(n, seed=1)
    reference[LABEL] = labels(reference, 1)
    model = Model(reference)
    reference = model.score(reference)
    reference[LABEL] = reference[LABEL].astype(str)
    return reference, model


def window(reference: pd.DataFrame, current: pd.DataFrame, **extra: Any) -> Window:
    current = current.copy()
    if ID not in current:
        current[ID] = [f"e{i}" for i in range(len(current))]
    if LABEL not in current:
        current[LABEL] = None
    return Window(reference=reference, current=current, schema=SCHEMA, **extra)


DETECTORS: list[tuple[str, dict[str, Any]]] = [
    ("native_drift", {}), ("prediction_drift", {}), ("missing_values", {}), ("accuracy", {"min_labels": 50}),
    ("estimated_accuracy", {}), ("schema_mismatch", {}),
]


def evidence_of(w: Window, extra: list[tuple[str, dict[str, Any]]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """What open_incident stores: each detector's status and breached findings, and the measured numbers."""
    checks = []
    for name, params in [*DETECTORS, *extra]:
        if len(w.current) < 30 and registry.needs_events(name):  # as the monitor's min_events gate does
            checks.append({"detector": name, "status": "insufficient_data", "findings": []})
            continue
        try:
            found = registry.build(name, params).run(w)
        except InsufficientData:
            checks.append({"detector": name, "status": "insufficient_data", "findings": []})
            continue
        status = "breached" if any(f.breached for f in found) else "ok"
        checks.append({"detector": name, "status": status, "findings": [_finding(f) for f in found if f.breached]})
    return {"checks": checks, "diagnosis": measure(w)}


def suggestions(w: Window, extra: list[tuple[str, dict[str, Any]]] = ()) -> dict[str, Suggestion]:  # type: ignore[assignment]
    """The diagnosis of the window, by tag."""
    return {s.tag: s for s in diagnose(Evidence.of(evidence_of(w, extra)))}
