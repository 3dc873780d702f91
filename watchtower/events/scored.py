"""A predict request's events as columns: built on the request path without pandas, turned into one event frame
per flush by the event writer (all the requests of a flush at once, not a frame per request)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the request path builds Scored without pyarrow; the writer's flush imports it
    import numpy as np
    import pyarrow as pa



@dataclass(frozen=True, eq=False)
class Scored:
    """One request's predictions: checked feature columns (check_columns' arrays), labels or values, the
    classifier's [n, classes] probabilities, and what every row of the request shares."""

    ids: list[str]
    features: "dict[str, np.ndarray]"
    predictions: list[Any]
    classes: tuple[str, ...]
    proba: "np.ndarray | None"
    latency_ms: float  # per row
    version: str
    at: datetime  # ts and received_at

    def __len__(self) -> int:
        return len(self.ids)


def scored_table(parts: Sequence[Scored], schema: dict[str, str], task: str) -> "pa.Table":
    """Several requests' predictions, in their order, as the event frame's columns in Arrow (what insert_table
    takes): built from the checked columns directly, no pandas frame."""
    import numpy as np
    import pyarrow as pa

    from detectors.base import ERROR, ID, LATENCY, PREDICTION, PROBA_PREFIX, TS
    from watchtower.events.frames import RECEIVED_AT, VERSION, epoch_micros, ts_array

    sizes = [len(p.ids) for p in parts]
    n = sum(sizes)
    columns: dict[str, pa.Array] = {}
    for name, kind in schema.items():
        # A dict lookup per request and feature, a call only for a missing feature: a flush holds many requests.
        values = np.concatenate([p.features[name] if name in p.features else _feature(p, name, kind)
                                 for p in parts])
        columns[name] = _floats(values) if kind == "numeric" else pa.array(values, pa.string(), from_pandas=True)
    times = ts_array(np.repeat(np.array([epoch_micros(p.at) for p in parts], np.int64), sizes))
    columns[ID] = pa.array(list(chain.from_iterable(p.ids for p in parts)), pa.string())
    columns[TS] = times
    columns[PREDICTION] = _prediction_array(list(chain.from_iterable(p.predictions for p in parts)), task)
    columns[LATENCY] = _floats(np.repeat(np.array([p.latency_ms for p in parts], float), sizes))
    columns[ERROR] = pa.nulls(n, pa.string())
    classes = {p.classes for p in parts if p.proba is not None}
    if len(classes) == 1 and all(p.proba is not None for p in parts):  # one graph scored the whole flush
        (order,) = classes
        proba = np.concatenate([p.proba for p in parts])
        for name in sorted(order):
            columns[f"{PROBA_PREFIX}{name}"] = _floats(proba[:, order.index(name)])
    else:
        for name in sorted(set(chain.from_iterable(classes))):
            # NaN where a request's graph has no such class (a swap between two graphs within one flush)
            columns[f"{PROBA_PREFIX}{name}"] = _floats(np.concatenate([
                p.proba[:, p.classes.index(name)].astype(float) if p.proba is not None and name in p.classes
                else np.full(len(p), np.nan) for p in parts]))
    columns[VERSION] = pa.array([v for p in parts for v in [p.version] * len(p)], pa.string())
    columns[RECEIVED_AT] = times
    return pa.table(columns)  # NaN is stored as null, as pyarrow's from_pandas stores a frame's NaN


def _floats(values: "np.ndarray") -> "pa.Array":
    """float64 values as Arrow, NaN as null. Without a NaN, Arrow takes the buffer as it is (2 us a column, against
    10-15 us through pa.array's conversion once pandas is loaded: 13 columns of every flush)."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.float64)
    if np.isnan(values).any():
        return pa.array(values, pa.float64(), from_pandas=True)
    return pa.Array.from_buffers(pa.float64(), len(values), [None, pa.py_buffer(values)])


FEW = 256  # fewer integer labels are spelled by Python: Arrow's cast to text costs 120 us before its first row


def _prediction_array(values: list[Any], task: str) -> "pa.Array":
    """prediction_column's values in Arrow. Integer labels (what ONNX classifiers output) and numeric values are
    converted by Arrow alone: a pandas Series per flush costs more than the rest of a small flush's columns."""
    import numpy as np
    import pyarrow as pa

    from watchtower.events.frames import prediction_column

    types = set(map(type, values))  # exact types: a bool label is not an integer one
    if types == {int} and task == "classification" and len(values) < FEW:
        return pa.array(list(map(str, values)), pa.string())
    if types == {int} and task == "classification":
        array = np.asarray(values)
        if array.dtype.kind in "iu":  # else a label beyond 64 bits: prediction_column spells it
            return pa.array(array).cast(pa.string())
    if types and types <= {int, float} and task != "classification":
        return pa.array(np.asarray(values, dtype=float), pa.float64(), from_pandas=True)
    return pa.array(prediction_column(values, task).to_numpy(), pa.string() if task == "classification"
                    else pa.float64(), from_pandas=True)


def _feature(part: Scored, name: str, kind: str) -> "np.ndarray":
    """A request's column of a feature (missing: a feature added while the request was in flight)."""
    import numpy as np

    column = part.features.get(name)
    if column is not None:
        return column
    return np.full(len(part), np.nan) if kind == "numeric" else np.full(len(part), None, dtype=object)
