"""Build small real ONNX models with scikit-learn + skl2onnx (the demo and the tests use them)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@dataclass(frozen=True)
class Built:
    """An ONNX graph and the estimator it came from."""

    onnx: bytes
    estimator: object


def tensor_classifier(x: pd.DataFrame, y: pd.Series, simple: bool = False, seed: int = 0) -> Built:
    """One float tensor [N, F] in schema order: a random forest, or a logistic regression when `simple`."""
    estimator = (Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=500))]) if simple
                 else RandomForestClassifier(n_estimators=40, max_depth=6, random_state=seed))
    estimator.fit(x.to_numpy(np.float32), y)
    onx = convert_sklearn(estimator, initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
                          options={id(estimator): {"zipmap": False}}, target_opset=17)
    return Built(onx.SerializeToString(), estimator)


def named_classifier(x: pd.DataFrame, y: pd.Series, numeric: list[str], categorical: list[str],
                     simple: bool = False) -> Built:
    """One named input per feature (strings for categoricals), as skl2onnx converts a ColumnTransformer."""
    columns = ColumnTransformer([("num", StandardScaler(), numeric),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)])
    head = LogisticRegression(max_iter=500) if simple else RandomForestClassifier(n_estimators=30, random_state=0)
    estimator = Pipeline([("columns", columns), ("model", head)])
    frame = x.copy()
    frame[categorical] = frame[categorical].astype(str)
    estimator.fit(frame, y)
    types = [(c, FloatTensorType([None, 1])) for c in numeric] + [(c, StringTensorType([None, 1])) for c in categorical]
    ordered = sorted(types, key=lambda t: list(x.columns).index(t[0]))
    onx = convert_sklearn(estimator, initial_types=ordered, options={id(head): {"zipmap": False}}, target_opset=17)
    return Built(onx.SerializeToString(), estimator)
