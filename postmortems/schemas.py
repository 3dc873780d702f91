"""What the incident API reads and writes."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from postmortems.models import Severity, Status
from watchtower.limits import (
    INT32_MAX,
    Day,
    FiniteFloat,
    JsonValue,
    LongText,
    Patchable,
    SafeStr,
    ShortText,
    UtcDatetime,
)

Author = Field(min_length=1, max_length=200)
Names = Annotated[list[ShortText], Field(max_length=1000)]
ImpactNumbers = Annotated[dict[ShortText, FiniteFloat], Field(max_length=1000)]


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
    score: float | None = Field(default=None, description="How sure the diagnosis was (0..1); None for a person's tag")
    reason: str = Field(default="", description="Why the diagnosis suggested it, naming the numbers")
    signature: str | None = Field(default=None, description="The diagnosis signature that suggested it")


class GuardRead(BaseModel):
    """The detector an action item added to a monitor, and what it has done since."""

    model: str
    monitor: str
    detector: str
    params: dict[str, Any]
    state: Literal["not_yet_run", "quiet", "fired"]
    runs: dict[str, int] = Field(description="Check runs of the guard since it was added, by status")
    last_run_at: datetime | None
    last_fired_at: datetime | None
    caught: list[int] = Field(description="Later incidents this guard caught")


class ActionItemRead(BaseModel):
    id: int
    title: str
    owner: str | None
    due: date | None
    status: str
    guard: GuardRead | None = None


class GuardCatchRead(BaseModel):
    """A postmortem's guard that caught this incident: the incident that created it, linked back."""

    incident_id: int
    incident_title: str
    action_item_id: int
    detector: str
    monitor: str


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
    caught_by: list[GuardCatchRead] = Field(default_factory=list)


class IncidentCreate(BaseModel):
    """An incident filed by hand (not every failure is caught by a detector)."""

    model_config = ConfigDict(extra="forbid")
    title: SafeStr = Field(min_length=1, max_length=300)
    summary: LongText = ""
    severity: Severity = Severity.sev3
    owner: SafeStr | None = Field(default=None, max_length=200)
    author: SafeStr = Author
    models: Names = Field(default_factory=list, description="Affected model names")
    pipelines: Names = Field(default_factory=list)
    impact: LongText = ""
    impact_numbers: ImpactNumbers = Field(default_factory=dict)
    tags: Annotated[list[SafeStr], Field(max_length=100)] = Field(
        default_factory=list, description="Taxonomy keys, confirmed by the author")
    opened_at: UtcDatetime | None = None
    impact_started_at: UtcDatetime | None = None


class IncidentUpdate(BaseModel):
    """Fields people edit; unset fields stay as they are, and only `owner` may be set to null."""

    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Author
    title: Patchable[Annotated[SafeStr, Field(min_length=1, max_length=300)]] = None
    summary: Patchable[LongText] = None
    severity: Patchable[Severity] = None
    owner: SafeStr | None = Field(default=None, max_length=200)
    impact: Patchable[LongText] = None
    impact_numbers: Patchable[ImpactNumbers] = None
    models: Patchable[Names] = None
    pipelines: Patchable[Names] = None


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["acknowledged", "mitigated", "resolved", "postmortem_complete", "reopen"]
    author: SafeStr = Author
    reason: SafeStr = Field(default="", max_length=2000)


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Author
    text: SafeStr = Field(min_length=1, max_length=20000)


class TagDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Author
    confidence: Literal["confirmed", "rejected", "suggested"] = "confirmed"


class WriteupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Author
    markdown: SafeStr = Field(min_length=1, max_length=500_000)
    base_revision: int = Field(ge=0, le=INT32_MAX,
                               description="The revision this edit started from; 409 if it is stale")


class WriteupRead(BaseModel):
    incident_id: int
    revision: int
    markdown: str
    author: str
    created_at: datetime | None


class GuardSpec(BaseModel):
    """A detector with params to add to a monitor of the incident's model, validated by the detector registry."""

    model_config = ConfigDict(extra="forbid")
    model: ShortText | None = Field(default=None, description="Default: the incident's model")
    monitor: ShortText = Field(min_length=1)
    detector: ShortText = Field(min_length=1)
    params: Annotated[dict[ShortText, JsonValue], Field(max_length=100)] = Field(default_factory=dict)


class GuardProposalRead(BaseModel):
    """A guard pre-filled from the incident's evidence."""

    model: str
    monitor: str
    detector: str
    params: dict[str, Any]
    reason: str


class ActionItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Author
    title: SafeStr = Field(min_length=1, max_length=500)
    owner: SafeStr | None = Field(default=None, max_length=200)
    due: Day | None = None
    guard: GuardSpec | None = Field(default=None, description="Make the item a guard: add this detector to the "
                                    "monitor now (recorded on the timeline); its runs show on the item")


class ActionItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Author
    status: Patchable[Literal["open", "done", "wont_do"]] = None
    owner: SafeStr | None = Field(default=None, max_length=200)
    due: Day | None = None


class NotSimilar(BaseModel):
    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Author
