"""Serving events (one per prediction) and the labels that arrive later."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class ServingEvent(SQLModel, table=True):
    """A prediction as served: features in, prediction out, who served it and how fast."""

    __tablename__ = "serving_event"
    __table_args__ = (
        UniqueConstraint("model_id", "event_id"),
        Index("ix_serving_event_model_ts", "model_id", "ts"),
    )
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    event_id: str = Field(max_length=200)
    ts: datetime
    features: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prediction: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    latency_ms: float | None = None
    version: str | None = Field(default=None, max_length=100)
    received_at: datetime = Field(default_factory=utcnow)


class Label(SQLModel, table=True):
    """Ground truth for one prediction id, joined to its event by (model, event id)."""

    __table_args__ = (UniqueConstraint("model_id", "event_id"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    event_id: str = Field(max_length=200)
    label: Any = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
