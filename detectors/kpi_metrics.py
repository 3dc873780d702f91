"""Model-quality metrics in numpy, with scikit-learn's definitions (tests check them against sklearn.metrics).

Classes are compared as strings because labels and predictions arrive as JSON: `class_names` turns 1, 1.0 and
"1" into "1" (a label column with gaps is float in pandas, and "1.0" must still match the prediction 1).
"""

from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from detectors.base import PROBA_PREFIX, class_name

Average = Literal["binary", "macro", "weighted"]
EPS = float(np.finfo(np.float64).eps)  # log loss clips probabilities to [eps, 1 - eps], as sklearn does


def class_names(values: pd.Series) -> np.ndarray:
    """Class values as canonical strings: 1, 1.0, np.int64(1) and "1" all become "1"; True becomes "true".

    A window holds millions of values but a handful of classes, so each distinct value is spelled once. Only a
    column of one kind is factorized: in a mixed object column 1, 1.0 and True are equal in Python (one hash
    bucket) yet True is spelled "true", so each value there is spelled on its own.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if series.dtype != object or pd.api.types.infer_dtype(series, skipna=True) == "string":
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        spelled = np.array([class_name(u) for u in uniques] + [None], dtype=object)
        named: np.ndarray = spelled[codes]  # code -1 (missing) takes the trailing None
        return named
    return np.array([class_name(v) for v in series], dtype=object)


def proba_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's class-probability columns as floats, renamed to their class names."""
    columns = [c for c in frame.columns if str(c).startswith(PROBA_PREFIX)]
    probas = frame[columns].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    return probas.rename(columns={c: str(c)[len(PROBA_PREFIX):] for c in columns})


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Share of predictions equal to their label."""
    return float((labels == predictions).mean())


def _per_class(labels: np.ndarray, predictions: np.ndarray, classes: list[str]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted counts and true counts of each class."""
    tp = np.array([np.sum((labels == c) & (predictions == c)) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(predictions == c) for c in classes], dtype=np.float64)
    actual = np.array([np.sum(labels == c) for c in classes], dtype=np.float64)
    return tp, predicted, actual


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (sklearn's zero_division=0)."""
    result: np.ndarray = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return result


def precision_recall_f1(labels: np.ndarray, predictions: np.ndarray, metric: str, average: Average,
                        positive: str) -> float:
    """Precision, recall or F1 as sklearn computes them (labels = union of both, zero_division=0).

    `binary` is the positive class against all others; it is NaN where undefined (no predictions of the positive
    class for precision, no labels of it for recall, neither for F1) instead of sklearn's 0, so callers can say so.
    """
    classes = [positive] if average == "binary" else sorted(set(labels) | set(predictions))
    tp, predicted, actual = _per_class(labels, predictions, classes)
    denominator = {"precision": predicted, "recall": actual, "f1": predicted + actual}[metric]
    if average == "binary" and denominator[0] == 0:
        return float("nan")
    values = _ratio(tp * (2.0 if metric == "f1" else 1.0), denominator)
    if average == "weighted":
        return float(np.average(values, weights=actual)) if actual.sum() > 0 else 0.0
    return float(values.mean())


def binary_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U of the positives' scores (ties count half); NaN if one class."""
    positives = int(is_positive.sum())
    negatives = len(is_positive) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[is_positive].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc_auc(labels: np.ndarray, probas: pd.DataFrame, average: Average, positive: str) -> float:
    """ROC AUC of the positive class (binary) or one-vs-rest over the probability classes (macro/weighted).

    Classes absent from the labels have no AUC and are left out of the average (sklearn refuses such data).
    """
    if average == "binary":
        if positive not in probas:
            return float("nan")
        return binary_auc(labels == positive, probas[positive].to_numpy())
    aucs, weights = [], []
    for name in probas.columns:
        auc = binary_auc(labels == name, probas[name].to_numpy())
        if not np.isnan(auc):
            aucs.append(auc)
            weights.append(float(np.sum(labels == name)))
    if not aucs:
        return float("nan")
    return float(np.average(aucs, weights=weights if average == "weighted" else None))


def log_loss(labels: np.ndarray, probas: pd.DataFrame) -> float:
    """Mean negative log of the probability given to the true class, clipped like sklearn's.

    A label with no probability column got probability 0 from the model, so it costs -log(eps). NaN without any
    probability column.
    """
    if probas.columns.empty:
        return float("nan")
    columns = {name: i for i, name in enumerate(probas.columns)}
    values = probas.to_numpy(dtype=np.float64)
    index = np.array([columns.get(label, -1) for label in labels])
    true_class = np.where(index >= 0, values[np.arange(len(labels)), np.maximum(index, 0)], 0.0)
    return float(-np.log(np.clip(true_class, EPS, 1 - EPS)).mean())


def regression_error(labels: np.ndarray, predictions: np.ndarray, metric: str) -> tuple[float, int]:
    """MAE, RMSE or MAPE, and how many rows MAPE left out because their label is 0 (its error is undefined).

    sklearn's MAPE divides by max(|label|, eps) instead, which turns one zero label into an error of ~1e15.
    """
    errors = labels - predictions
    if metric == "mae":
        return float(np.mean(np.abs(errors))), 0
    if metric == "rmse":
        return float(np.sqrt(np.mean(errors**2))), 0
    nonzero = labels != 0
    excluded = int((~nonzero).sum())
    if excluded == len(labels):
        return float("nan"), excluded
    return float(np.mean(np.abs(errors[nonzero]) / np.abs(labels[nonzero]))), excluded
