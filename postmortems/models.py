"""Incidents and everything that hangs off them: timeline, tags, write-up revisions, action items, similar links."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

# The generic ARRAY, which PostgreSQL's dialect adapts to its own when it compiles and binds: importing that
# dialect here cost every start ~25 ms, SQLite's too (watchtower.db imports these tables).
from sqlalchemy import ARRAY, JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class Status(StrEnum):
    """Where an incident is in its life."""

    open = "open"
    acknowledged = "acknowledged"
    mitigated = "mitigated"
    resolved = "resolved"
    postmortem_complete = "postmortem_complete"


ACTIVE = (Status.open, Status.acknowledged, Status.mitigated)


class Severity(StrEnum):
    """SEV1 is the worst."""

    sev1 = "SEV1"
    sev2 = "SEV2"
    sev3 = "SEV3"
    sev4 = "SEV4"


class Incident(SQLModel, table=True):
    """One failure: what fired, what was done, and what people wrote about it."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=300)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))
    severity: str = Field(default=Severity.sev3.value, max_length=10, index=True)
    severity_rule: str = Field(default="", max_length=500)
    status: str = Field(default=Status.open.value, max_length=30, index=True)
    source: str = Field(default="detector", max_length=20)  # detector | manual | import
    owner: str | None = Field(default=None, max_length=200)
    model_id: int | None = Field(default=None, foreign_key="monitored_model.id", index=True)
    monitor_id: int | None = Field(default=None, foreign_key="monitor.id")
    # The grouping key of a detector incident ("model:1", or "model:1:monitor:2" when the policy groups by
    # monitor); open_key holds it while the incident is active and is NULL after: a unique column both
    # databases enforce, so two concurrent breaches cannot open two incidents for one failure.
    group_key: str | None = Field(default=None, max_length=100)
    open_key: str | None = Field(default=None, max_length=100, unique=True)
    affected_models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    affected_pipelines: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    impact: str = Field(default="", sa_column=Column(Text, nullable=False))
    impact_numbers: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # When the earliest event of the first breaching window was served: time to detect counts from here.
    impact_started_at: datetime | None = None
    opened_at: datetime = Field(default_factory=utcnow, index=True)
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class TimelineEntry(SQLModel, table=True):
    """Something that happened during an incident, automatic or written by a person."""

    __tablename__ = "timeline_entry"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=50)  # breach, pause_pipeline, swap_model, notify, restore, note, status, ...
    source: str = Field(max_length=20)  # automation | human
    author: str = Field(max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class IncidentTag(SQLModel, table=True):
    """A taxonomy tag on an incident: suggested (by a detector or similarity), confirmed or rejected by a person."""

    __tablename__ = "incident_tag"
    __table_args__ = (UniqueConstraint("incident_id", "tag"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    tag: str = Field(max_length=100, index=True)
    confidence: str = Field(default="suggested", max_length=20)  # suggested | confirmed | rejected
    source: str = Field(default="detector", max_length=20)  # detector | similarity | person | import
    author: str = Field(default="watchtower", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    # What the diagnosis said (postmortems/diagnosis): how sure (0..1), why (naming the numbers), and which
    # signature said it. Kept when a person confirms or rejects the tag; None for tags people added.
    score: float | None = None
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    signature: str | None = Field(default=None, max_length=50)


class WriteupRevision(SQLModel, table=True):
    """One saved version of an incident's postmortem document (Markdown); the newest is current."""

    __tablename__ = "writeup_revision"
    __table_args__ = (UniqueConstraint("incident_id", "revision"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    revision: int
    markdown: str = Field(sa_column=Column(Text, nullable=False))
    author: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class ActionItem(SQLModel, table=True):
    """Follow-up work from a postmortem."""

    __tablename__ = "action_item"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    title: str = Field(max_length=500)
    owner: str | None = Field(default=None, max_length=200)
    due: date | None = None
    status: str = Field(default="open", max_length=20)  # open | done | wont_do
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # A guard: the detector this item added to a monitor ({"model", "monitor", "monitor_id", "detector",
    # "params"}); its check runs carry this item's id (check_run.guard_item_id). None: an ordinary task.
    guard: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class SimilarLink(SQLModel, table=True):
    """A past incident suggested as similar; `dismissed` remembers a person's 'not similar'."""

    __tablename__ = "similar_link"
    __table_args__ = (UniqueConstraint("incident_id", "similar_id"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    similar_id: int = Field(foreign_key="incident.id")
    score: float
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    dismissed: bool = False
    dismissed_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Taxonomy(SQLModel, table=True):
    """A failure taxonomy stored as data: a namespace and its node tree (see postmortems/taxonomy.py)."""

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=100, unique=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    nodes: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    builtin: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class IncidentDocument(SQLModel, table=True):
    """The searchable text of an incident; FTS5 (SQLite) or a tsvector column (PostgreSQL) indexes it.

    It also carries copies of what search filters on and counts (opened_at, severity, status, model, tags
    that are not rejected), so that one index-ordered scan of this table answers a query, its filters and its
    facets without probing `incident` and `incident_tag` per row. `refresh_document` keeps them current.
    """

    __tablename__ = "incident_document"
    # On PostgreSQL the migrations also add a GIN index on `tags` (SQL only, like the full-text index):
    # it finds the incidents with a rare tag without walking the newest-first index past all the others.
    __table_args__ = (Index("ix_incident_document_newest", "opened_at", "incident_id"),)
    incident_id: int = Field(foreign_key="incident.id", primary_key=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    opened_at: datetime
    severity: str = Field(max_length=10)
    status: str = Field(max_length=30)
    model_id: int | None = None
    tags: list[str] = Field(default_factory=list,
                            sa_column=Column(JSON().with_variant(ARRAY(Text), "postgresql"), nullable=False))
