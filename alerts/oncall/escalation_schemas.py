"""What the escalation API takes and returns; every refusal names its field."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchtower.auth.models import HANDLE
from watchtower.limits import SafeStr

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"
PolicyName = Annotated[str, Field(pattern=NAME, description="Letters, digits, _ . : -; 1 to 100 characters")]
SlackName = Annotated[SafeStr, Field(min_length=1, max_length=100)]
KINDS = ("schedule", "user", "channel", "user_group")
MAX_DELAY, MAX_REPEAT, MAX_STEPS, MAX_TARGETS = 9000, 5, 20, 10


class Target(BaseModel):
    """Whom a step notifies: exactly one of the on-call person of a schedule, a user (by handle), a Slack channel
    (name or id: a message there, or a thread reply when it is the incident channel), a Slack user group (id)."""

    model_config = ConfigDict(extra="forbid")
    schedule: SlackName | None = None
    user: Annotated[str, Field(pattern=HANDLE)] | None = None
    channel: SlackName | None = None
    user_group: Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,30}$")] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Target":
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def value(self) -> str:
        return str(getattr(self, self.kind))


class Step(BaseModel):
    """Notify every target, then wait `delay_minutes` before the next step."""

    model_config = ConfigDict(extra="forbid")
    targets: list[Target] = Field(min_length=1, max_length=MAX_TARGETS)
    delay_minutes: int = Field(ge=1, le=MAX_DELAY)


class PolicyCreate(BaseModel):
    """An escalation policy: steps in order, the whole chain repeated `repeat` more times."""

    model_config = ConfigDict(extra="forbid")
    name: PolicyName
    description: Annotated[SafeStr, Field(max_length=2000)] = ""
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    repeat: int = Field(default=0, ge=0, le=MAX_REPEAT)
    default: bool = Field(default=False, description="Route every model without a policy of its own here")


class PolicyUpdate(BaseModel):
    """Fields to change; the rest stay. In-flight escalations keep the chain they started with."""

    model_config = ConfigDict(extra="forbid")
    description: Annotated[SafeStr, Field(max_length=2000)] | None = None
    steps: list[Step] | None = Field(default=None, min_length=1, max_length=MAX_STEPS)
    repeat: int | None = Field(default=None, ge=0, le=MAX_REPEAT)
    default: bool | None = None


class PolicyRead(BaseModel):
    id: int
    name: str
    description: str
    steps: list[dict[str, Any]]
    repeat: int
    default: bool
    models: list[str]  # the models routed here by a route of their own
    updated_at: datetime


class RouteSet(BaseModel):
    """Route a model's incidents to this policy."""

    model_config = ConfigDict(extra="forbid")
    policy: PolicyName


class RouteRead(BaseModel):
    model: str
    policy: str | None  # the policy its incidents start, or None when none applies (no route, no default)
    source: str  # "model" (its own route), "default" or "none"


class EscalationRead(BaseModel):
    """An incident's escalation: its frozen chain and where it stands."""

    incident_id: int
    policy: str
    state: str
    step: int
    repeats_done: int
    next_at: datetime | None
    acked_at: datetime | None
    started_at: datetime
    chain: dict[str, Any]
