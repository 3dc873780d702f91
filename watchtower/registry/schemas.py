"""What a client sends to register a model, and what the API returns about it."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints, field_validator

from watchtower.limits import INT32_MAX, JsonValue, SafeStr, ShortText
from watchtower.policy.holds import HoldRead

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
LogMode = Literal["durable", "async"]
MonitorMode = Literal["auto", "exact", "profile"]
MONITOR_MODE_HELP = ("exact: detectors test the window's rows; profile: detectors that can test merged profiles "
                     "(mergeable sketches) do; auto: profile mode above WATCHTOWER_PROFILE_MODE_EVENTS events")
LOG_MODE_HELP = ("How predict logs its events: durable (answers once stored) or async (answers at once; a crash can "
                 "lose the last flush interval). null: WATCHTOWER_LOG_MODE")


class FeatureSpec(BaseModel):
    """One input feature."""

    model_config = ConfigDict(extra="forbid")
    name: SafeStr = Field(min_length=1, max_length=200)
    type: Literal["numeric", "categorical"]
    nullable: bool = False


class GuardLink(BaseModel):
    """Which postmortem action item added this detector as a guard."""

    model_config = ConfigDict(extra="forbid")
    incident_id: int = Field(gt=0, le=INT32_MAX)
    action_item_id: int = Field(gt=0, le=INT32_MAX)


class DetectorSpec(BaseModel):
    """A detector by registered name and its params."""

    model_config = ConfigDict(extra="forbid")
    name: SafeStr = Field(max_length=100)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    threshold: dict[str, JsonValue] | None = Field(
        default=None, description='Static when absent; learned: {"mode": "quantile" | "mean_std", "source": '
        '"history" | "reference_chunks", "q" | "k", "floor", "min_samples", "max_history", "chunks", "chunk_rows"}')
    guard: GuardLink | None = Field(default=None, description="Set by Watchtower on a postmortem's guard; keep it "
                                      "when re-sending the monitor so the guard stays linked to its incident")


class MonitorSpec(BaseModel):
    """A scheduled check; unset numbers come from settings."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="default", pattern=NAME)
    detectors: list[DetectorSpec] | None = Field(default=None, min_length=1)
    interval_s: int | None = Field(default=None, gt=0, le=INT32_MAX)
    window_s: int | None = Field(default=None, gt=0, le=INT32_MAX)
    window_events: int | None = Field(
        default=None, gt=0, le=INT32_MAX,
        description="Count-based tumbling windows of this many events instead of window_s")
    min_events: int | None = Field(default=None, gt=0, le=INT32_MAX)
    mode: MonitorMode = Field(default="auto", description=MONITOR_MODE_HELP)


class PipelineSpec(BaseModel):
    """The training/ingestion pipeline behind the model; defaults to one named after it."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, pattern=NAME)
    webhook_url: Annotated[HttpUrl, UrlConstraints(max_length=2000)] | None = None


def unique_features(features: list[FeatureSpec]) -> list[FeatureSpec]:
    """Refuse a schema naming a feature twice."""
    seen: set[str] = set()
    for feature in features:
        if feature.name in seen:
            raise ValueError(f"feature '{feature.name}' appears twice")
        seen.add(feature.name)
    return features


class VersionSpec(BaseModel):
    """The optional JSON `spec` part of a version upload: the schema the new version takes.

    `target` left out keeps the model's; a changed schema needs a new `reference` upload.
    """

    model_config = ConfigDict(extra="forbid")
    features: list[FeatureSpec] = Field(min_length=1)
    target: str | None = None

    _unique = field_validator("features")(unique_features)


class ModelSpec(BaseModel):
    """The JSON `spec` part of a registration upload."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    task: Literal["classification", "regression"] = "classification"
    features: list[FeatureSpec] = Field(min_length=1, max_length=10_000)
    target: ShortText | None = None
    pipeline: PipelineSpec = Field(default_factory=PipelineSpec)
    monitors: list[MonitorSpec] = Field(default_factory=lambda: [MonitorSpec()], min_length=1, max_length=100)
    log_mode: LogMode | None = Field(default=None, description=LOG_MODE_HELP)

    _unique = field_validator("features")(unique_features)

    @field_validator("monitors")
    @classmethod
    def _unique_monitors(cls, monitors: list[MonitorSpec]) -> list[MonitorSpec]:
        if len({m.name for m in monitors}) != len(monitors):
            raise ValueError("monitor names must be unique")
        return monitors


class ModelPatch(BaseModel):
    """PATCH /models/{name}: the settings of a model that change without a new version."""

    model_config = ConfigDict(extra="forbid")
    log_mode: LogMode | None = Field(default=None, description=LOG_MODE_HELP)


class VersionRead(BaseModel):
    role: str
    version: int
    sha256: str
    features: list[dict[str, Any]] = Field(description="The schema this version was registered with")
    target: str | None
    created_at: datetime


class MonitorRead(BaseModel):
    name: str
    detectors: list[dict[str, Any]]
    interval_s: int
    window_s: int
    window_events: int | None = None
    min_events: int
    mode: str = Field(default="auto", description=MONITOR_MODE_HELP)


class ModelRead(BaseModel):
    """A registered model as the API shows it."""

    name: str
    task: str
    features: list[dict[str, Any]]
    target: str | None
    input_style: str
    output_kind: str
    pipeline: str
    active_role: str
    active_version: str
    swapped_at: datetime | None
    reference_rows: int
    versions: list[VersionRead]
    monitors: list[MonitorRead]
    policy: dict[str, Any] = Field(description="The response policy that applies: {scope, policy}")
    holds: list[HoldRead] = Field(default_factory=list, description="Automatic actions held now by an operator")
    created_at: datetime
    archived_at: datetime | None = Field(default=None, description="Set while archived: not served, not monitored")
    archived_by: str | None = None
    archived_reason: str | None = None
    log_mode: str | None = Field(default=None, description=LOG_MODE_HELP)


class OperatorDecision(BaseModel):
    """Who restores or resumes, and why: both go on the incident's timeline."""

    model_config = ConfigDict(extra="forbid")
    author: SafeStr = Field(min_length=1, max_length=200)
    reason: SafeStr = Field(min_length=1, max_length=2000)


class HoldingDecision(OperatorDecision):
    """A restore or a resume: it holds the automatic action it undoes, until the model's incident is resolved,
    until `hold_until` if given, or until re-armed (POST /models/{name}/holds/{action}/rearm)."""

    hold_until: datetime | None = Field(default=None, description="End the hold at this time (in the future, "
                                        "at most 30 days ahead; a time without a zone is UTC)")


class PipelineRead(BaseModel):
    """What a pipeline polls before it runs."""

    name: str
    paused: bool
    paused_at: datetime | None
    paused_reason: str | None
    webhook_url: str | None
    models: list[str]
