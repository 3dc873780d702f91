"""Incidents, their timelines and taxonomy tags."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class Status(StrEnum):
    """Where an incident is in its life."""

    open = "open"
    resolved = "resolved"


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
    severity: str = Field(default=Severity.sev3.value, max_length=10)
    status: str = Field(default=Status.open.value, max_length=20)
    model_id: int | None = Field(default=None, foreign_key="monitored_model.id", index=True)
    monitor_id: int | None = Field(default=None, foreign_key="monitor.id")
    # "<model>:<monitor>" while open, NULL after: a unique column both databases enforce,
    # so two concurrent breaches cannot open two incidents for the same monitor.
    open_key: str | None = Field(default=None, max_length=100, unique=True)
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    opened_at: datetime = Field(default_factory=utcnow, index=True)
    resolved_at: datetime | None = None


class TimelineEntry(SQLModel, table=True):
    """Something that happened during an incident, automatic or written by a person."""

    __tablename__ = "timeline_entry"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=50)  # breach, pause, swap, alert, restore, resume, note, ...
    source: str = Field(max_length=20)  # automation | human
    author: str = Field(max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class IncidentTag(SQLModel, table=True):
    """A taxonomy tag on an incident: suggested by Watchtower or confirmed by a person."""

    __tablename__ = "incident_tag"
    __table_args__ = (UniqueConstraint("incident_id", "tag"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    tag: str = Field(max_length=100, index=True)
    confidence: str = Field(default="suggested", max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


class TimelineRead(BaseModel):
    """A timeline entry as the API shows it."""

    at: datetime
    kind: str
    source: str
    author: str
    text: str
    details: dict[str, Any]


class IncidentRead(BaseModel):
    """An incident as the API shows it."""

    id: int
    title: str
    summary: str
    severity: Severity
    status: Status
    model: str | None
    monitor: str | None
    evidence: dict[str, Any]
    tags: list[str]
    opened_at: datetime
    resolved_at: datetime | None
    url: str
    timeline: list[TimelineRead]
