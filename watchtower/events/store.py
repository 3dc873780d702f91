"""Write serving events and labels idempotently; read a model's window back as a DataFrame."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Table, and_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from detectors.base import LABEL, PREDICTION
from watchtower.events.models import Label, ServingEvent

CHUNK = 1000


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ServingEvent rows, skipping (model_id, event_id) pairs already stored; return how many were new."""
    return _insert_ignoring_duplicates(session, ServingEvent.__table__, rows)  # type: ignore[attr-defined]


def insert_labels(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert Label rows; the first label for a prediction id wins, resends are ignored."""
    return _insert_ignoring_duplicates(session, Label.__table__, rows)  # type: ignore[attr-defined]


def _insert_ignoring_duplicates(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted = 0
    # Resends inside one batch would trip the unique key before ON CONFLICT sees them: keep the first.
    unique = list({(r["model_id"], r["event_id"]): r for r in reversed(rows)}.values())[::-1]
    for start in range(0, len(unique), CHUNK):
        statement = insert(table).values(unique[start:start + CHUNK]).on_conflict_do_nothing(
            index_elements=["model_id", "event_id"]).returning(table.c.id)
        # RETURNING counts what was really inserted; rowcount is -1 for this statement on psycopg.
        inserted += len(session.execute(statement).all())
    return inserted


def read_window(session: Session, model_id: int, start: datetime, end: datetime,
                features: list[str]) -> pd.DataFrame:
    """Events served in [start, end) with their labels where known: feature columns, PREDICTION, LABEL."""
    rows = session.exec(
        select(ServingEvent.ts, ServingEvent.features, ServingEvent.prediction, Label.label)
        .join(Label, and_(col(Label.model_id) == col(ServingEvent.model_id),
                          col(Label.event_id) == col(ServingEvent.event_id)), isouter=True)
        .where(ServingEvent.model_id == model_id, col(ServingEvent.ts) >= start, col(ServingEvent.ts) < end)
    ).all()
    frame = pd.DataFrame.from_records([r[1] for r in rows], columns=features)
    frame[PREDICTION] = [r[2] for r in rows]
    frame[LABEL] = [r[3] for r in rows]
    return frame
