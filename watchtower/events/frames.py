"""Typed event frames built a column at a time: the shape insert_frame stores and segments hold.

An event frame has ID (str), TS (datetime64[ns, UTC]), one column per feature (float64 for numeric, object
str/None for categorical), PREDICTION (class string or float), LATENCY, ERROR, PROBA_<class> and, for the
idempotency keys, VERSION and RECEIVED_AT. Whole columns go through numpy or Arrow; Python touches a value
only where JSON gave a value no column type can take without looking at it (a class spelled 1.0, a dict).
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from detectors.base import ERROR, ID, LATENCY, PREDICTION, PROBA_PREFIX, TS, class_name
from watchtower.clock import utcnow

VERSION = "version"
RECEIVED_AT = "received_at"
KEY_COLUMNS = (VERSION, RECEIVED_AT)  # stored with the idempotency key, not in segments
_NONE = type(None)
# The stored event time (segments, keys): microseconds, as the event store keeps them and as Spark reads Parquet
# (it cannot read TIMESTAMP(NANOS)). Segments of older releases hold nanoseconds; `manifest.read` casts them.
# Event frames (pandas) keep nanoseconds.
TS_TYPE = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def prediction_column(values: Sequence[Any] | np.ndarray, task: str) -> pd.Series:
    """Predictions typed for the task: class strings for classifiers, floats for regressors."""
    series = pd.Series(values, dtype=object if len(values) == 0 else None)
    if task != "classification":
        if series.dtype.kind in "iuf":
            return series.astype(float)
        return pd.to_numeric(series.astype(object), errors="coerce").astype(float)
    if series.dtype.kind in "iu":  # the common case (ONNX labels): no per-value Python call
        return series.astype(str).astype(object)
    if series.dtype.kind == "f" and bool(np.all(np.isnan(series) | (series == np.round(series)))):
        return series.astype("Int64").astype(str).astype(object).where(series.notna(), None)
    if series.dtype.kind == "O" and set(map(type, series)) <= {str, _NONE}:  # labels already spelled as text
        return series
    return pd.Series([class_name(v) for v in series], dtype=object)


def features_frame(records: Sequence[Mapping[str, Any]], schema: dict[str, str]) -> pd.DataFrame:
    """Feature dicts -> one typed column per schema feature: float64 for numeric, str or None for categorical."""
    frame = pd.DataFrame.from_records(list(records), columns=list(schema))
    return typed_features(frame, schema)


def typed_features(frame: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """The schema's feature columns of `frame` as stored: float64 numeric, object str/None categorical."""
    for name, kind in schema.items():
        column = frame[name]
        if kind == "numeric":
            if column.dtype != np.float64:
                frame[name] = pd.to_numeric(column, errors="coerce").astype(float)
        elif column.dtype != object or column.isna().any():
            frame[name] = column.astype(object).where(column.notna(), None)
    return frame


def utc_times(values: Sequence[datetime | str | None] | pa.Array, default: datetime) -> pd.Series:
    """Aware datetimes (None: `default`) as a datetime64[ns, UTC] column, converted by Arrow in one call."""
    return pd.Series(utc_array(values, default).to_pandas(coerce_temporal_nanoseconds=True), copy=False)


def utc_array(values: Sequence[datetime | str | None] | pa.Array, default: datetime) -> pa.Array:
    """utc_times as an Arrow array of the stored type (TS_TYPE: microseconds)."""
    try:  # aware datetimes (the API's), or naive ones taken as UTC
        times = values if isinstance(values, pa.Array) else pa.array(values, type=pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # text, as SQLite hands stored times back
        times = pa.array(pd.to_datetime(pd.Series(values, dtype=object), utc=True))
    if times.null_count:
        times = times.fill_null(pa.scalar(default, type=times.type))
    return times.cast(TS_TYPE)


def proba_columns(scores: Sequence[Mapping[str, float] | None]) -> dict[str, np.ndarray]:
    """Per-event class -> probability dicts as one float64 column per class (NaN where a class is absent)."""
    present = [s for s in scores if s]
    if not present:
        return {}
    classes = sorted(set().union(*present))
    # Arrow converts the dicts in C++: one struct field per class, null where an event lacks the class.
    structs = pa.array([s or None for s in scores], type=pa.struct([(c, pa.float64()) for c in classes]))
    return {f"{PROBA_PREFIX}{c}": field.to_numpy(zero_copy_only=False)
            for c, field in zip(classes, structs.flatten(), strict=True)}


def event_frame(ids: Sequence[str], ts: pd.Series, features: Mapping[str, Any], predictions: Sequence[Any],
                task: str, *, latency: Sequence[float | None] | None = None,
                errors: Sequence[str | None] | None = None,
                scores: Sequence[Mapping[str, float] | None] | None = None,
                versions: Sequence[str | None] | str | None = None, received_at: datetime) -> pd.DataFrame:
    """Columns of one batch -> the frame insert_frame takes (features already checked and typed)."""
    n = len(ids)
    columns: dict[str, Any] = dict(features)  # assembled first: one DataFrame, not a block per insertion
    columns[ID] = np.asarray(ids, dtype=object)
    columns[TS] = ts.array
    columns[PREDICTION] = prediction_column(predictions, task).to_numpy()
    columns[LATENCY] = np.full(n, np.nan) if latency is None else np.array(latency, dtype=float)
    columns[ERROR] = np.full(n, None, dtype=object) if errors is None else np.asarray(errors, dtype=object)
    columns.update(proba_columns(scores or []))
    columns[VERSION] = np.full(n, versions, dtype=object) if versions is None or isinstance(versions, str) \
        else np.asarray(versions, dtype=object)
    columns[RECEIVED_AT] = pd.DatetimeIndex(np.full(n, pd.Timestamp(received_at).tz_convert("UTC")))
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


def event_table(ids: Sequence[str], ts: pa.Array, features: Mapping[str, np.ndarray], predictions: Sequence[Any],
                task: str, *, latency: Sequence[float | None] | None = None,
                errors: Sequence[str | None] | None = None,
                scores: Sequence[Mapping[str, float] | None] | None = None,
                versions: Sequence[str | None] | None = None, received_at: datetime) -> pa.Table:
    """event_frame's columns as an Arrow table (what the event writer stores), without a pandas frame: the
    events API's batches go from checked columns to Arrow once. NaN is stored as null, as from a frame."""
    n = len(ids)
    floats, text = pa.float64(), pa.string()
    columns: dict[str, pa.Array] = {name: pa.array(values, floats if values.dtype.kind == "f" else text,
                                                   from_pandas=True) for name, values in features.items()}
    columns[ID] = pa.array(ids, text)
    columns[TS] = ts
    columns[PREDICTION] = pa.array(prediction_column(predictions, task).to_numpy(),
                                   text if task == "classification" else floats, from_pandas=True)
    columns[LATENCY] = pa.nulls(n, floats) if latency is None else pa.array(np.array(latency, dtype=float), floats,
                                                                            from_pandas=True)
    columns[ERROR] = pa.nulls(n, text) if errors is None else pa.array(errors, text)
    columns.update({name: pa.array(values, floats, from_pandas=True)
                    for name, values in proba_columns(scores or []).items()})
    columns[VERSION] = pa.nulls(n, text) if versions is None else pa.array(versions, text)
    columns[RECEIVED_AT] = received_column(n, received_at)
    return pa.table(columns)


def epoch_micros(moment: datetime) -> int:
    """An aware time as TS_TYPE stores it: microseconds since the epoch."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def column_micros(times: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A time column as TS_TYPE holds it: int64 microseconds since the epoch (finer units truncated). A TS_TYPE
    column is only viewed as int64 (2 us; two casts cost 25 us, and a small flush takes three such columns)."""
    if times.type == TS_TYPE:
        if isinstance(times, pa.ChunkedArray):
            return pa.chunked_array([chunk.view(pa.int64()) for chunk in times.chunks], pa.int64())
        return times.view(pa.int64())
    return times.cast(TS_TYPE, safe=False).cast(pa.int64())


def from_micros(micros: int) -> datetime:
    """epoch_micros' inverse, an aware UTC time. Arrow's own as_py() of a zoned scalar costs 35 us (a time zone
    lookup); this, under 1 us."""
    return _EPOCH + timedelta(microseconds=micros)


def ts_array(micros: "np.ndarray[Any, np.dtype[np.int64]]") -> pa.Array:
    """Microseconds since the epoch as a TS_TYPE array, sharing their buffer: pa.array(micros, TS_TYPE) looks the
    time zone up at each call (60 us, more than a flush of a few predictions spends on all its other columns)."""
    micros = np.ascontiguousarray(micros, dtype=np.int64)
    return pa.Array.from_buffers(TS_TYPE, len(micros), [None, pa.py_buffer(micros)])


def received_column(n: int, received_at: datetime) -> pa.Array:
    """RECEIVED_AT for n events that arrived together."""
    return ts_array(np.full(n, epoch_micros(received_at), dtype=np.int64))


def events_frame(rows: Sequence[Mapping[str, Any]], schema: dict[str, str], task: str) -> pd.DataFrame:
    """ServingEvent-shaped dicts (event_id, ts, features, prediction, latency_ms, error, scores, version,
    received_at) -> the frame insert_frame takes. Row dicts must be taken apart one by one; event_frame
    does the rest on whole columns."""
    now = utcnow()
    features = features_frame([r["features"] for r in rows], schema)
    frame = event_frame(
        [str(r["event_id"]) for r in rows], utc_times([r["ts"] for r in rows], default=now),
        {name: features[name].to_numpy() for name in schema}, [r.get("prediction") for r in rows], task,
        latency=[r.get("latency_ms") for r in rows], errors=[r.get("error") for r in rows],
        scores=[r.get("scores") for r in rows], versions=[r.get("version") for r in rows], received_at=now)
    frame[RECEIVED_AT] = utc_times([r.get("received_at") for r in rows], default=now).array
    return frame
