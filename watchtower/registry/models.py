"""Registered models, their ONNX versions, reference data, monitors and pipelines."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class Role(StrEnum):
    """Which of a model's two ONNX graphs serves."""

    primary = "primary"
    fallback = "fallback"


class Pipeline(SQLModel, table=True):
    """A training/ingestion pipeline; it polls its paused state before it runs."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    paused: bool = False
    paused_at: datetime | None = None
    paused_reason: str | None = None
    webhook_url: str | None = Field(default=None, max_length=2000)
    updated_at: datetime = Field(default_factory=utcnow)


class MonitoredModel(SQLModel, table=True):
    """A model under watch: its feature schema, pipeline and which role serves now."""

    __tablename__ = "monitored_model"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    task: str = Field(max_length=20)
    features: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    input_style: str = Field(max_length=20)
    output_kind: str = Field(max_length=100)
    target: str | None = Field(default=None, max_length=200)
    pipeline_id: int = Field(foreign_key="pipeline.id")
    active_role: str = Field(default=Role.primary.value, max_length=20)
    swapped_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Archived: not served, not monitored; its incidents, checks and history stay readable and its name taken.
    archived_at: datetime | None = None
    archived_by: str | None = Field(default=None, max_length=200)
    archived_reason: str | None = Field(default=None, max_length=2000)
    # Prediction logging mode (durable | async); None follows WATCHTOWER_LOG_MODE.
    log_mode: str | None = Field(default=None, max_length=20)


class ModelVersion(SQLModel, table=True):
    """One ONNX graph; the newest of each role is the one served."""

    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model_id", "role", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id", index=True)
    role: str = Field(max_length=20)
    version: int
    sha256: str = Field(max_length=64)
    onnx: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The schema this version was registered with (a version may bring a new one, with a new reference).
    features: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    target: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class ReferenceData(SQLModel, table=True):
    """The training (reference) dataset as Parquet, with the primary model's predictions on it.

    The newest row of a model is its reference; older ones are kept as history (a version that changes the
    schema brings a new one).
    """

    __tablename__ = "reference_data"
    # Covers "the newest reference's id and time" (the profile cache's key, read every profile-mode pass): SQLite
    # stores created_at after the Parquet blob and walked its overflow pages for it (33 ms at 1M rows).
    __table_args__ = (Index("ix_reference_data_model_id_created", "model_id", "id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id", index=True)
    n_rows: int
    parquet: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # detectors.profile.ReferenceProfile, computed once at registration so checks touch only the current window.
    profile: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # The mergeable profile (detectors.sketches.profile.Profile) of the same frame; NULL on rows stored before
    # it existed: computed and stored on first use (watchtower/events/segstore/profiles.py).
    sketch: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Monitor(SQLModel, table=True):
    """A scheduled check of one model: which detectors, how often, over which window."""

    __table_args__ = (UniqueConstraint("model_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id", index=True)
    name: str = Field(max_length=100)
    detectors: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    interval_s: int
    window_s: int
    min_events: int
    # Count-based tumbling windows: each pass checks the next `window_events` events after the cursor
    # (the served time and id of the last event the previous block checked). None: the last window_s seconds.
    window_events: int | None = None
    cursor_ts: datetime | None = None
    cursor_event_id: str | None = Field(default=None, max_length=200)
    # When a new reference re-profiled the monitor: learned thresholds re-fit from check runs after it only.
    reprofiled_at: datetime | None = None
    # auto | exact | profile: whether passes test merged profiles instead of rows (auto: above a window size).
    mode: str = Field(default="auto", max_length=10)
    created_at: datetime = Field(default_factory=utcnow)
