"""Serving events (one per prediction) and the labels that arrive later."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow

FALLBACK_SERVED = "version LIKE 'fallback-%'"  # the versions the fallback model serves under (serving/)


class ServingEvent(SQLModel, table=True):
    """A prediction's key: its identity, when it was served, which version served it and when it arrived.

    Everything else (features, prediction, probabilities, latency, error) lives in the model's EventSegments
    (columnar); this row is the idempotency key, the label and stage join and the count index.
    """

    __tablename__ = "serving_event"
    # No time index (segstore/times.py answers when events were served): only the rare events a fallback served
    # are indexed by time, for a postmortem's count of them (migration 0030).
    __table_args__ = (Index("ix_serving_event_fallback", "model_id", "ts", sqlite_where=text(FALLBACK_SERVED),
                            postgresql_where=text(FALLBACK_SERVED)),)
    # The key is the row: no surrogate id (nothing refers to one) and no foreign key (models are archived, never
    # deleted), each of which cost PostgreSQL work per inserted event (migration 0028).
    model_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    event_id: str = Field(primary_key=True, max_length=200)
    ts: datetime
    version: str | None = Field(default=None, max_length=100)
    received_at: datetime = Field(default_factory=utcnow)


class EventSegment(SQLModel, table=True):
    """The manifest row of one Parquet segment of a model's events (ids, times, typed features, prediction...).

    The file is written first (`path`, in the segment store) or the bytes kept here (`parquet`, the "database"
    store); the row commits with the ServingEvent rows it holds, so an acknowledged batch is in both. Windows
    read the live segments (`retired_at` unset) overlapping them; compaction retires merged ones, and a sweep
    deletes retired files after a grace period, so a reader that saw the old manifest still finds them.
    """

    __tablename__ = "event_segment"
    __table_args__ = (Index("ix_event_segment_model_ts", "model_id", "max_ts", "min_ts"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    min_ts: datetime
    max_ts: datetime
    n_rows: int
    n_bytes: int = 0
    path: str | None = Field(default=None, max_length=1000)  # relative to the store's root
    parquet: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # Profile.to_bytes() of its rows (watchtower/events/segstore/profiles.py), set just after the row commits
    # (or by compaction); NULL: a window reads the segment exactly.
    profile: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


class PostedProfile(SQLModel, table=True):
    """A profile of events kept elsewhere (a data lake), posted by `watchtower profile` or any DataSketches
    client: it counts in every window that holds its whole [start, end). `reference`: the model's reference
    profile instead (start and end may then be unset)."""

    __tablename__ = "posted_profile"
    __table_args__ = (Index("ix_posted_profile_model_start", "model_id", "start"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    start: datetime | None = None
    end: datetime | None = None
    rows: int = Field(sa_column=Column(BigInteger, nullable=False))  # a lake's day can pass 2^31 events
    profile: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    reference: bool = False
    source: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str | None = Field(default=None, max_length=200)


class ProfileRollup(SQLModel, table=True):
    """The merged profile of the profiled segments lying wholly in one profile bucket: a cache, so a window over
    100M events merges a few dozen profiles instead of hundreds. `segments` names what it merged (a fingerprint
    of their ids); a window uses it only while the bucket's live profiled segments are exactly those
    (watchtower/events/segstore/rollups.py)."""

    __tablename__ = "profile_rollup"
    __table_args__ = (UniqueConstraint("model_id", "bucket_start", "bucket_s"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    bucket_start: datetime
    bucket_s: int
    segments: str = Field(max_length=64)
    n_segments: int
    rows: int = Field(sa_column=Column(BigInteger, nullable=False))
    profile: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class IngestRejection(SQLModel, table=True):
    """Events refused at ingest for a schema reason; a fire-and-forget producer never reads its 422s."""

    __tablename__ = "ingest_rejection"
    __table_args__ = (Index("ix_ingest_rejection_model_ts", "model_id", "ts"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    ts: datetime
    kind: str = Field(max_length=20)  # missing | extra | wrong_type
    feature: str = Field(max_length=200)
    count: int


class FeatureLog(SQLModel, table=True):
    """Feature values of one entity as logged at a pipeline stage (e.g. generated for training)."""

    __tablename__ = "feature_log"
    __table_args__ = (UniqueConstraint("model_id", "stage", "entity_id"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    stage: str = Field(max_length=100)
    entity_id: str = Field(max_length=200)
    features: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    logged_at: datetime = Field(default_factory=utcnow)


class MetricPoint(SQLModel, table=True):
    """One value of a business KPI (click-through, conversion...) pushed for a model."""

    __tablename__ = "metric_point"
    __table_args__ = (Index("ix_metric_point_model_ts", "model_id", "ts"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    name: str = Field(max_length=100)
    value: float
    ts: datetime


class Label(SQLModel, table=True):
    """Ground truth for one prediction id, joined to its event by (model, event id)."""

    __table_args__ = (UniqueConstraint("model_id", "event_id"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    event_id: str = Field(max_length=200)
    label: Any = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow)
