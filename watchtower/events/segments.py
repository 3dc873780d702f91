"""Columnar event storage: each ingested batch is one Parquet segment in the segment store (watchtower/events/
segstore: a directory, an object store or the database), a window reads only the segments overlapping it, and
compaction merges small segments so a window touches few of them.

A segment holds ID, TS, the model's features (float64 for numeric, string for categorical), PREDICTION
(canonical class string for classifiers, float for regressors), LATENCY, ERROR and PROBA_* columns.
"""

from concurrent.futures import Future
from datetime import datetime

import pandas as pd
import pyarrow as pa
from sqlmodel import Session

from detectors.base import ID, TS
from watchtower.events.segstore import manifest, stores
from watchtower.events.segstore.compaction import compact, compact_all

__all__ = ["add_segment", "compact", "compact_all", "encode", "read_segments"]


def encode(frame: pd.DataFrame) -> bytes:
    """A frame of events as the database store keeps it."""
    return stores.encode(manifest.as_table(frame))


def add_segment(session: Session, model_id: int, frame: pd.DataFrame | pa.Table,
                placing: "Future[manifest.Placing] | None" = None) -> None:
    """Store a frame of new events as one segment: its file now (or as manifest.place_ahead started it), its
    manifest row in the caller's transaction."""
    manifest.write_segment(session, model_id, frame, placing)


def read_segments(session: Session, model_id: int, start: datetime, end: datetime,
                  columns: list[str] | None = None) -> pd.DataFrame:
    """Events with start <= TS < end, oldest first, from the segments overlapping the range (ID, TS and
    `columns`; None: every column)."""
    wanted = None if columns is None else [ID, TS, *columns]
    return manifest.to_frame(manifest.scan(session, model_id, start, end, wanted))
