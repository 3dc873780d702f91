"""Columnar event storage: each ingested batch is one Parquet segment in the segment store (watchtower/events/
segstore: a directory, an object store or the database), a window reads only the segments overlapping it, and
compaction merges small segments so a window touches few of them.

A segment holds ID, TS, the model's features (float64 for numeric, string for categorical), PREDICTION
(canonical class string for classifiers, float for regressors), LATENCY, ERROR and PROBA_* columns.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlmodel import Session

from detectors.base import ERROR, ID, LATENCY, PREDICTION, PROBA_PREFIX, TS, class_name
from watchtower.events.segstore import manifest, stores
from watchtower.events.segstore.compaction import compact, compact_all

__all__ = ["add_segment", "compact", "compact_all", "encode", "read_segments"]


def prediction_column(values: Sequence[Any], task: str) -> pd.Series:
    """Predictions typed for the task: class strings for classifiers, floats for regressors."""
    if task == "classification":
        series = pd.Series(values)
        if series.dtype.kind in "iu":  # the common case (ONNX labels): no per-value Python call
            return series.astype(str).astype(object)
        if series.dtype.kind == "f" and bool(np.all(np.isnan(series) | (series == np.round(series)))):
            return series.astype("Int64").astype(str).astype(object).where(series.notna(), None)
        return pd.Series([class_name(v) for v in values], dtype=object)
    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").astype(float)


def features_frame(records: Sequence[Mapping[str, Any]], schema: dict[str, str]) -> pd.DataFrame:
    """Feature dicts -> one typed column per schema feature: float64 for numeric, str or None for categorical."""
    frame = pd.DataFrame.from_records(list(records), columns=list(schema))
    for name, kind in schema.items():
        if kind == "numeric":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        else:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def events_frame(rows: Sequence[dict[str, Any]], schema: dict[str, str], task: str) -> pd.DataFrame:
    """ServingEvent-shaped dicts (event_id, ts, features, prediction, latency_ms, error, scores) -> a typed frame."""
    frame = features_frame([r["features"] for r in rows], schema)
    frame[ID] = [str(r["event_id"]) for r in rows]
    frame[TS] = pd.to_datetime([r["ts"] for r in rows], utc=True)
    frame[PREDICTION] = prediction_column([r.get("prediction") for r in rows], task)
    frame[LATENCY] = pd.to_numeric(pd.Series([r.get("latency_ms") for r in rows], dtype=object),
                                   errors="coerce").astype(float)
    frame[ERROR] = pd.Series([r.get("error") for r in rows], dtype=object)
    classes = sorted({c for r in rows for c in (r.get("scores") or {})})
    for c in classes:
        frame[f"{PROBA_PREFIX}{c}"] = [float((r.get("scores") or {}).get(c, np.nan)) for r in rows]
    return frame


def encode(frame: pd.DataFrame) -> bytes:
    """A frame of events as the database store keeps it."""
    return stores.encode(manifest.as_table(frame))


def add_segment(session: Session, model_id: int, frame: pd.DataFrame | pa.Table) -> None:
    """Store a frame of new events as one segment: its file now, its manifest row in the caller's transaction."""
    manifest.write_segment(session, model_id, frame)


def read_segments(session: Session, model_id: int, start: datetime, end: datetime,
                  columns: list[str] | None = None) -> pd.DataFrame:
    """Events with start <= TS < end, oldest first, from the segments overlapping the range (ID, TS and
    `columns`; None: every column)."""
    wanted = None if columns is None else [ID, TS, *columns]
    return manifest.to_frame(manifest.scan(session, model_id, start, end, wanted))
