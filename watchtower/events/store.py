"""Write serving events and labels idempotently; read a model's window back as a DataFrame."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Table, and_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from detectors.base import ID, LABEL
from watchtower.events.models import FeatureLog, IngestRejection, Label, MetricPoint, ServingEvent
from watchtower.events.segments import add_segment, events_frame, features_frame, prediction_column, read_segments
from watchtower.registry.models import MonitoredModel
from watchtower.registry.service import schema_of

CHUNK = 5000


EVENT_COLUMNS = ("model_id", "event_id", "ts", "prediction", "latency_ms", "error", "version", "received_at")


def insert_events(session: Session, model: MonitoredModel, rows: Sequence[dict[str, Any]]) -> int:
    """Store one model's events, skipping event ids already stored; return how many were new.

    Each row: event_id, ts, features (normalised), prediction, latency_ms, error, version, received_at, and
    optionally scores (class -> probability). The new ones become ServingEvent rows and one EventSegment,
    in the caller's transaction.
    """
    return sum(insert_events_mask(session, model, rows))


def insert_events_mask(session: Session, model: MonitoredModel, rows: Sequence[dict[str, Any]]) -> list[bool]:
    """insert_events, saying for each row whether it was new (the event writer splits a flush's count per
    request with it)."""
    assert model.id is not None
    keyed = [{k: r.get(k) for k in EVENT_COLUMNS} | {"model_id": model.id} for r in rows]
    new = set(_insert_ignoring_duplicates(session, ServingEvent.__table__, keyed))  # type: ignore[attr-defined]
    # The first of several rows with one id in a batch is the one stored (as in _insert_ignoring_duplicates).
    mask, seen = [], set()
    for r in rows:
        fresh = r["event_id"] in new and r["event_id"] not in seen
        seen.add(r["event_id"])
        mask.append(fresh)
    add_segment(session, model.id, events_frame([r for r, m in zip(rows, mask, strict=True) if m],
                                                schema_of(model), model.task))
    return mask


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


def read_window(session: Session, model: MonitoredModel, start: datetime, end: datetime) -> pd.DataFrame:
    """Events served in [start, end), oldest first: ID, TS, features, PREDICTION, LATENCY, ERROR, PROBA_*, and
    LABEL where a label has arrived."""
    assert model.id is not None
    frame = read_segments(session, model.id, start, end)
    # A model without labels (most windows of most models) skips the join over every event of the window.
    labelled = session.exec(select(Label.id).where(Label.model_id == model.id).limit(1)).first() is not None
    labels = session.exec(
        select(Label.event_id, Label.label)
        .join(ServingEvent, and_(col(Label.model_id) == col(ServingEvent.model_id),
                                 col(Label.event_id) == col(ServingEvent.event_id)))
        .where(ServingEvent.model_id == model.id, col(ServingEvent.ts) >= start, col(ServingEvent.ts) < end)
    ).all() if labelled else []
    by_id = dict(labels)
    if by_id:
        frame[LABEL] = prediction_column([by_id.get(i) for i in frame[ID]], model.task)
    elif model.task == "classification":
        frame[LABEL] = pd.Series(np.full(len(frame), None, dtype=object), index=frame.index)
    else:
        frame[LABEL] = np.nan
    schema = schema_of(model)
    for name in schema.keys() - set(frame.columns):  # a feature added after these events were stored
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
    rows = session.exec(
        select(FeatureLog.entity_id, FeatureLog.features)
        .join(ServingEvent, and_(col(ServingEvent.model_id) == col(FeatureLog.model_id),
                                 col(ServingEvent.event_id) == col(FeatureLog.entity_id)))
        .where(FeatureLog.model_id == model.id, FeatureLog.stage == stage,
               col(ServingEvent.ts) >= start, col(ServingEvent.ts) < end)
    ).all()
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


def count_events(session: Session, model_id: int, start: datetime, end: datetime) -> int:
    """How many events were served in [start, end) (an index-only count)."""
    return int(session.exec(select(func.count()).select_from(ServingEvent).where(
        ServingEvent.model_id == model_id, col(ServingEvent.ts) >= start, col(ServingEvent.ts) < end)).one())
