"""Write serving events and labels idempotently; read a model's window back as a DataFrame."""

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from sqlalchemy import Table, and_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from detectors.base import ID, LABEL, PREDICTION, PROBA_PREFIX, TS
from watchtower.events.frames import (
    KEY_COLUMNS,
    RECEIVED_AT,
    VERSION,
    events_frame,
    features_frame,
    prediction_column,
)
from watchtower.events.models import FeatureLog, IngestRejection, Label, MetricPoint, ServingEvent
from watchtower.events.segments import add_segment, read_segments
from watchtower.events.segstore.manifest import as_table, scan, scan_sample, to_frame
from watchtower.registry.models import MonitoredModel
from watchtower.registry.service import schema_of

CHUNK = 5000


def insert_frame(session: Session, model: MonitoredModel, frame: pd.DataFrame) -> np.ndarray:
    """insert_table for an events_frame-shaped pandas frame."""
    return insert_table(session, model, as_table(frame))


def insert_table(session: Session, model: MonitoredModel, table: pa.Table) -> np.ndarray:
    """Store one model's events (an event frame's columns as Arrow) in the caller's transaction; return the
    mask of rows that were new. Ids already stored are skipped, and of several rows with one id the first wins.

    The idempotency keys go to serving_event in one INSERT ... SELECT from a temporary table filled with
    COPY (PostgreSQL) or executemany (SQLite); the new rows become one segment. No pandas frame is built:
    the flush of a few predictions costs what Arrow does, not what pandas' per-call overhead does.
    """
    assert model.id is not None
    n = table.num_rows
    # The common case (ids unique, none stored before) touches no pandas: its per-call overhead is a large
    # share of what a flush of a few predictions costs.
    unique = pc.count_distinct(table.column(ID), mode="all").as_py() == n
    ids = None if unique else pd.Index(table.column(ID).to_numpy(zero_copy_only=False))
    first = np.ones(n, dtype=bool) if ids is None else ~ids.duplicated(keep="first")
    postgres = session.get_bind().dialect.name == "postgresql"
    keys = table.select([ID, TS, VERSION, RECEIVED_AT])
    keys = _key_table(keys if unique else keys.filter(pa.array(first)), "+00" if postgres else "")
    stored = _insert_keys(session, model.id, keys, postgres)
    if len(stored) == keys.num_rows:
        new = first
    else:
        if ids is None:
            ids = pd.Index(table.column(ID).to_numpy(zero_copy_only=False))
        new = first & ids.isin(stored)
    segment = table.drop_columns([c for c in KEY_COLUMNS if c in table.column_names])
    add_segment(session, model.id, segment if new.all() else segment.filter(pa.array(new)))
    return np.asarray(new, dtype=bool)


def insert_events(session: Session, model: MonitoredModel, rows: Sequence[dict[str, Any]]) -> int:
    """insert_frame for row dicts (event_id, ts, features, prediction, latency_ms, error, version,
    received_at, optionally scores: class -> probability); return how many were new."""
    if not rows:
        return 0
    return int(insert_frame(session, model, events_frame(rows, schema_of(model), model.task)).sum())


def _key_table(keys: pa.Table, zone: str) -> pa.Table:
    """The idempotency keys as text columns; times spelled as SQLite stores them, plus `zone` ("+00" for
    PostgreSQL, which would otherwise read them in the session's time zone)."""
    def utc_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
        if len(column) == 0:
            return pa.chunked_array([], pa.string())
        if not pa.types.is_timestamp(column.type):  # all None: nothing to format
            return column.cast(pa.string())
        # Cast without the zone first: the values stay UTC, and Arrow formats naive times 50x faster.
        text = column.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us")).cast(pa.string())
        return pc.binary_join_element_wise(text, zone, "") if zone else text

    return pa.table({"event_id": keys.column(ID).cast(pa.string()), "ts": utc_text(keys.column(TS)),
                     "version": keys.column(VERSION).cast(pa.string()),
                     "received_at": utc_text(keys.column(RECEIVED_AT))})


_KEY_TABLE = "ingest_key"
_COPY_KEYS = f"COPY {_KEY_TABLE} (event_id, ts, version, received_at) FROM STDIN (FORMAT csv)"
# WHERE true: SQLite's parser needs it between SELECT and an upsert clause.
_INSERT_KEYS = (f"INSERT INTO serving_event (model_id, event_id, ts, version, received_at) "
                f"SELECT {{model}}, event_id, ts, version, received_at FROM {_KEY_TABLE} WHERE true "
                "ON CONFLICT (model_id, event_id) DO NOTHING RETURNING event_id")


def _insert_keys(session: Session, model_id: int, keys: pa.Table, postgres: bool) -> list[str]:
    """Insert the keys not stored yet (unique within `keys`); return the event ids really inserted."""
    if keys.num_rows == 0:
        return []
    raw = session.connection().connection.driver_connection
    cursor = raw.cursor()  # type: ignore[union-attr]
    try:
        if not postgres and _all_new_sqlite(cursor, model_id, keys):
            return keys.column(0).to_pylist()  # type: ignore[no-any-return]
        # One temporary table per connection, emptied at commit; a rolled-back transaction takes it away too.
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_KEY_TABLE} (event_id text NOT NULL, "
                       f"ts {'timestamptz' if postgres else 'DATETIME'} NOT NULL, version text, received_at "
                       f"{'timestamptz' if postgres else 'DATETIME'}){' ON COMMIT DELETE ROWS' if postgres else ''}")
        cursor.execute(f"DELETE FROM {_KEY_TABLE}")  # an earlier batch of this transaction, maybe another model's
        if postgres:
            buffer = io.BytesIO()
            csv.write_csv(keys, buffer, csv.WriteOptions(include_header=False))
            with cursor.copy(_COPY_KEYS) as copy:
                copy.write(buffer.getbuffer())
        else:
            cursor.executemany(f"INSERT INTO {_KEY_TABLE} VALUES (?, ?, ?, ?)",
                               zip(*(keys.column(i).to_pylist() for i in range(4)), strict=True))
        cursor.execute(_INSERT_KEYS.format(model=int(model_id)))
        return [row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()


def _all_new_sqlite(cursor: Any, model_id: int, keys: pa.Table) -> bool:
    """SQLite, the common case (no id stored before): the keys straight into serving_event, without the temporary
    table's extra pass and RETURNING. If some were stored before, nothing is kept (back to the savepoint) and the
    caller takes the path that says which ones were new."""
    cursor.execute("SAVEPOINT ingest_keys")
    cursor.executemany(f"INSERT INTO serving_event (model_id, event_id, ts, version, received_at) VALUES "
                       f"({int(model_id)}, ?, ?, ?, ?) ON CONFLICT (model_id, event_id) DO NOTHING",
                       zip(*(keys.column(i).to_pylist() for i in range(4)), strict=True))
    inserted = bool(cursor.rowcount == keys.num_rows)  # executemany's rowcount: rows inserted, conflicts not counted
    if not inserted:
        cursor.execute("ROLLBACK TO ingest_keys")
    cursor.execute("RELEASE ingest_keys")
    return inserted


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
