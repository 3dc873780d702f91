"""Write serving events and labels idempotently; read a model's window back as a DataFrame."""

import json
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import String, Table, TextualSelect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from detectors.base import ID, LABEL, PREDICTION, PROBA_PREFIX, TS, FeatureType
from watchtower.events.frames import (
    KEY_COLUMNS,
    RECEIVED_AT,
    VERSION,
    events_frame,
    features_frame,
    prediction_column,
)
from watchtower.events.keys import SMALL_KEYS, insert_keys
from watchtower.events.models import FeatureLog, IngestRejection, Label, MetricPoint, ServingEvent
from watchtower.events.segments import add_segment, read_segments
from watchtower.events.segstore.binding import Segments, bound
from watchtower.events.segstore.manifest import as_table, drop_ahead, place_ahead, scan, scan_sample, to_frame
from watchtower.events.segstore.profiles import profile_arrow, profile_schema
from watchtower.registry.models import MonitoredModel
from watchtower.registry.service import schema_of

CHUNK = 5000


def insert_frame(session: Session, model: MonitoredModel, frame: pd.DataFrame) -> np.ndarray:
    """insert_table for an events_frame-shaped pandas frame."""
    return insert_table(session, model, as_table(frame))


def insert_table(session: Session, model: MonitoredModel, table: pa.Table) -> np.ndarray:
    """Store one model's events (an event frame's columns as Arrow) in the caller's transaction; return the
    mask of rows that were new. Ids already stored are skipped, and of several rows with one id the first wins.

    The idempotency keys go to serving_event (events/keys.py); the new rows become one segment. No pandas frame
    is built: the flush of a few predictions costs what Arrow does, not what pandas' per-call overhead does.
    """
    assert model.id is not None
    ids = table.column(ID)
    # The usual batch: told by Arrow without Python strings, or for a few rows (a flush of a few predictions) by
    # Python, without Arrow's set-up (35 us).
    if (len(set(ids.to_pylist())) if table.num_rows < SMALL_KEYS else pc.count_distinct(ids).as_py()) == table.num_rows:
        first = np.ones(table.num_rows, dtype=bool)
    else:
        first = ~pd.Index(ids.to_numpy(zero_copy_only=False)).duplicated(keep="first")
    bind = session.get_bind()
    postgres = bind.dialect.name == "postgresql"
    segment = table.drop_columns([c for c in KEY_COLUMNS if c in table.column_names])
    if not first.all():
        table, segment = table.filter(pa.array(first)), segment.filter(pa.array(first))
    # Usually every row is new: its segment is written (encoded, synced) and profiled while the database inserts
    # the keys.
    segments = bound(bind)
    profile = None
    if segment.num_rows >= segments.profile_min_rows:  # the schema read here: the worker touches no ORM object
        profile = partial(_profile_bytes, profile_schema(model, segment.column_names), segments)
    placing = place_ahead(bind, model.id, segment, profile)
    try:
        keys = table.select([ID, TS, VERSION, RECEIVED_AT])
        stored = insert_keys(session, model.id, keys, postgres)
    except BaseException:
        drop_ahead(bind, placing)
        raise
    if len(stored) == keys.num_rows:
        add_segment(session, model.id, segment, placing)
        return first
    drop_ahead(bind, placing)
    new = pc.is_in(keys.column(ID).cast(pa.string()), pa.array(stored, pa.string())).to_numpy(zero_copy_only=False)
    add_segment(session, model.id, segment.filter(pa.array(new)))
    mask = first.copy()
    mask[first] = new
    return mask


def _profile_bytes(schema: dict[str, FeatureType], segments: Segments, table: pa.Table) -> bytes:
    return profile_arrow(schema, table, segments).to_bytes()


def insert_events(session: Session, model: MonitoredModel, rows: Sequence[dict[str, Any]]) -> int:
    """insert_frame for row dicts (event_id, ts, features, prediction, latency_ms, error, version,
    received_at, optionally scores: class -> probability); return how many were new."""
    if not rows:
        return 0
    return int(insert_frame(session, model, events_frame(rows, schema_of(model), model.task)).sum())


def insert_labels(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert Label rows; the first label for a prediction id wins, resends are ignored."""
    return len(_insert_ignoring_duplicates(session, Label.__table__, rows))  # type: ignore[attr-defined]


def served_ids(session: Session, model_id: int, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are events of the model (served or reported); an index lookup per chunk."""
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), CHUNK):
        found.update(session.exec(select(ServingEvent.event_id).where(
            ServingEvent.model_id == model_id, col(ServingEvent.event_id).in_(unique[start:start + CHUNK]))).all())
    return found


def _insert_ignoring_duplicates(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert, skipping (model_id, event_id) pairs already stored; return the event ids really inserted."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted: list[str] = []
    # Resends inside one batch would trip the unique key before ON CONFLICT sees them: keep the first.
    unique = list({(r["model_id"], r["event_id"]): r for r in reversed(rows)}.values())[::-1]
    # One statement, executed for many rows: SQLAlchemy batches it ("insertmanyvalues") without compiling a
    # bind parameter per value. RETURNING says what was really inserted (rowcount is -1 here on psycopg).
    statement = insert(table).on_conflict_do_nothing(
        index_elements=["model_id", "event_id"]).returning(table.c.event_id)
    for start in range(0, len(unique), CHUNK):
        inserted += [row[0] for row in session.connection().execute(statement, unique[start:start + CHUNK]).all()]
    return inserted


def read_window(session: Session, model: MonitoredModel, start: datetime, end: datetime,
                columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Events served in [start, end), oldest first: ID, TS, features, PREDICTION, LATENCY, ERROR, PROBA_*, and
    LABEL where a label has arrived; with `columns`, TS and only those (LABEL among them joins the labels)."""
    assert model.id is not None
    if columns is None:
        frame = read_segments(session, model.id, start, end)
    else:  # a monitor reads only what its detectors test
        wanted = [TS, *columns, *([ID] if LABEL in columns else [])]
        frame = to_frame(scan(session, model.id, start, end, wanted))
    schema = schema_of(model)
    for name in (schema.keys() & set(columns or schema)) - set(frame.columns):  # a feature added after these events
        frame[name] = np.nan if schema[name] == "numeric" else None
    if columns is not None and LABEL not in columns:
        return frame
    # A model without labels (most windows of most models) skips the join over every event of the window.
    labelled = session.exec(select(Label.id).where(Label.model_id == model.id).limit(1)).first() is not None
    labels = session.exec(select(Label.event_id, Label.label).where(
        Label.model_id == model.id, col(Label.event_id).in_(id_list(session, frame[ID].unique().tolist())))
    ).all() if labelled and len(frame) else []
    by_id = dict(labels)
    if by_id:
        frame[LABEL] = prediction_column([by_id.get(i) for i in frame[ID]], model.task)
    elif model.task == "classification":
        frame[LABEL] = pd.Series(np.full(len(frame), None, dtype=object), index=frame.index)
    else:
        frame[LABEL] = np.nan
    return frame


def sample_window(session: Session, model: MonitoredModel, start: datetime, end: datetime,
                  rows: int) -> pd.DataFrame:
    """About `rows` events of [start, end) (see manifest.scan_sample): TS, the features, the prediction and the
    class probabilities; no labels."""
    assert model.id is not None
    schema = schema_of(model)

    def wanted(stored: pa.Schema) -> list[str]:
        return [c for c in stored.names if c in schema or c in (TS, PREDICTION) or c.startswith(PROBA_PREFIX)]

    frame = to_frame(scan_sample(session, model.id, start, end, rows, wanted))
    for name in schema.keys() - set(frame.columns):  # a feature added after these events
        frame[name] = np.nan if schema[name] == "numeric" else None
    return frame


def upsert_feature_logs(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or replace FeatureLog rows by (model, stage, entity id); within a batch the last row wins."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    unique = list({(r["model_id"], r["stage"], r["entity_id"]): r for r in rows}.values())
    for start in range(0, len(unique), CHUNK):
        statement = insert(FeatureLog.__table__).values(unique[start:start + CHUNK])  # type: ignore[attr-defined]
        session.execute(statement.on_conflict_do_update(
            index_elements=["model_id", "stage", "entity_id"],
            set_={"features": statement.excluded.features, "logged_at": statement.excluded.logged_at}))
    return len(unique)


def read_stage(session: Session, model: MonitoredModel, stage: str, start: datetime, end: datetime) -> pd.DataFrame:
    """A stage's logged features for the entities served in [start, end): ID + feature columns."""
    assert model.id is not None
    served = scan(session, model.id, start, end, [TS, ID])
    ids = served.column(ID).to_pylist() if ID in served.column_names else []
    rows = session.exec(select(FeatureLog.entity_id, FeatureLog.features).where(
        FeatureLog.model_id == model.id, FeatureLog.stage == stage,
        col(FeatureLog.entity_id).in_(id_list(session, ids)))).all() if ids else []
    frame = features_frame([r[1] for r in rows], schema_of(model))
    frame[ID] = [r[0] for r in rows]
    return frame


def read_metrics(session: Session, model_id: int, start: datetime, end: datetime) -> pd.DataFrame:
    """Business KPI points pushed in [start, end): name, value, ts."""
    rows = session.exec(select(MetricPoint.name, MetricPoint.value, MetricPoint.ts).where(
        MetricPoint.model_id == model_id, col(MetricPoint.ts) >= start, col(MetricPoint.ts) < end)
        .order_by(col(MetricPoint.ts))).all()
    return pd.DataFrame.from_records(rows, columns=["name", "value", "ts"])


def read_rejections(session: Session, model_id: int, start: datetime, end: datetime) -> pd.DataFrame:
    """Events refused at ingest in [start, end) by (kind, feature): kind, feature, count."""
    rows = session.exec(select(IngestRejection.kind, IngestRejection.feature, func.sum(IngestRejection.count))
                        .where(IngestRejection.model_id == model_id, col(IngestRejection.ts) >= start,
                               col(IngestRejection.ts) < end)
                        .group_by(col(IngestRejection.kind), col(IngestRejection.feature))).all()
    return pd.DataFrame.from_records([(k, f, int(n)) for k, f, n in rows], columns=["kind", "feature", "count"])


def id_list(session: Session, ids: Sequence[str]) -> TextualSelect:
    """`ids` as a subquery for IN: one JSON parameter the database unpacks (a window's million ids would be a
    million bound parameters)."""
    unpack = ("SELECT value FROM json_each(:ids)" if session.get_bind().dialect.name == "sqlite"
              else "SELECT json_array_elements_text(CAST(:ids AS json)) AS value")
    return text(unpack).bindparams(ids=json.dumps(list(ids))).columns(value=String)
