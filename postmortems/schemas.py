"""What the incident API reads and writes."""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from postmortems.models import Severity, Status

Author = Field(min_length=1, max_length=200)


class TimelineRead(BaseModel):
    at: datetime
    kind: str
    source: str
    author: str
    text: str
    details: dict[str, Any]


class TagRead(BaseModel):
    tag: str
    label: str
    confidence: str
    source: str
    author: str
    root_cause: bool


class ActionItemRead(BaseModel):
    id: int
    title: str
    owner: str | None
    due: date | None
    status: str


class SimilarRead(BaseModel):
    id: int
    title: str
    status: str
    score: float
    reasons: list[str]
    root_causes: list[str]
    fixed_by: str | None
    dismissed: bool


class Durations(BaseModel):
    """Seconds; null until the incident got there."""

    time_to_detect: float | None
    time_to_acknowledge: float | None
    time_to_mitigate: float | None
    time_to_resolve: float | None


class IncidentRead(BaseModel):
    """An incident as the API shows it."""

    id: int
    title: str
    summary: str
    severity: Severity
    severity_rule: str
    status: Status
    source: str
    owner: str | None
    model: str | None
    monitor: str | None
    affected_models: list[str]
    affected_pipelines: list[str]
    impact: str
    impact_numbers: dict[str, float]
    evidence: dict[str, Any]
    tags: list[TagRead]
    impact_started_at: datetime | None
    opened_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    completed_at: datetime | None
    durations: Durations
    url: str
    timeline: list[TimelineRead]
    action_items: list[ActionItemRead]
    similar: list[SimilarRead]
    writeup_revision: int


class IncidentCreate(BaseModel):
    """An incident filed by hand (not every failure is caught by a detector)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=300)
    summary: str = ""
    severity: Severity = Severity.sev3
    owner: str | None = Field(default=None, max_length=200)
    author: str = Author
    models: list[str] = Field(default_factory=list, description="Affected model names")
    pipelines: list[str] = Field(default_factory=list)
    impact: str = ""
    impact_numbers: dict[str, float] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, description="Taxonomy keys, confirmed by the author")
    opened_at: datetime | None = None
    impact_started_at: datetime | None = None


class IncidentUpdate(BaseModel):
    """Fields people edit; unset fields stay as they are."""

    model_config = ConfigDict(extra="forbid")
    author: str = Author
    title: str | None = Field(default=None, min_length=1, max_length=300)
    summary: str | None = None
    severity: Severity | None = None
    owner: str | None = Field(default=None, max_length=200)
    impact: str | None = None
    impact_numbers: dict[str, float] | None = None
    models: list[str] | None = None
    pipelines: list[str] | None = None


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["acknowledged", "mitigated", "resolved", "postmortem_complete", "reopen"]
    author: str = Author
    reason: str = Field(default="", max_length=2000)


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: str = Author
    text: str = Field(min_length=1, max_length=20000)


class TagDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: str = Author
    confidence: Literal["confirmed", "rejected", "suggested"] = "confirmed"


class WriteupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: str = Author
    markdown: str = Field(min_length=1, max_length=500_000)
    base_revision: int = Field(ge=0, description="The revision this edit started from; 409 if it is stale")


class WriteupRead(BaseModel):
    incident_id: int
    revision: int
    markdown: str
    author: str
    created_at: datetime | None


class ActionItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: str = Author
    title: str = Field(min_length=1, max_length=500)
    owner: str | None = Field(default=None, max_length=200)
    due: date | None = None


class ActionItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: str = Author
    status: Literal["open", "done", "wont_do"] | None = None
    owner: str | None = Field(default=None, max_length=200)
    due: date | None = None


class NotSimilar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: str = Author
