"""A response policy as data: ordered rules, each matching findings and naming what to do about them.

The defaults follow the advice this product is built on: broken data stops the pipeline that would train on
it, a failing model is replaced by its fallback, and drift alone is worth a look, not a swap. A rule fires
only when `confirm.k` of the last `confirm.n` passes matched it, so one noisy small window does not page.
"""

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detectors import registry
from detectors.base import DetectorKind

Action = Literal["pause_pipeline", "swap_model", "open_incident", "notify", "record"]
# Mitigate first (stop the bad data, stop the bad model), then record and tell people.
ACTION_ORDER: tuple[Action, ...] = ("pause_pipeline", "swap_model", "open_incident", "notify")
Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4"]
RULE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Match(BaseModel):
    """Which breached findings a rule takes: by detector name or kind, optionally only some features."""

    model_config = ConfigDict(extra="forbid")
    detectors: list[str] = Field(default_factory=list, max_length=50,
                                 description="Detector names; with `kinds`, either one matches")
    kinds: list[DetectorKind] = Field(default_factory=list, max_length=20)
    features: list[str] = Field(default_factory=list, max_length=500,
                                description="Only breaches on these features count (empty: any)")
    min_features: int = Field(default=1, ge=1, le=10_000,
                              description="How many distinct features must breach for the rule to match")

    @field_validator("detectors")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if registry.kind_of(n) is None]
        if unknown:
            raise ValueError(f"unknown detector(s) {unknown}; known: {registry.names()}")
        return names

    def takes(self, detector: str) -> bool:
        """Whether findings of `detector` can match (no names and no kinds: every detector)."""
        if not self.detectors and not self.kinds:
            return True
        return detector in self.detectors or registry.kind_of(detector) in self.kinds


class Confirm(BaseModel):
    """Fire only when `k` of the last `n` passes with a verdict matched the rule."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(default=1, ge=1, le=100)
    n: int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _k_within_n(self) -> Self:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) cannot exceed n ({self.n})")
        return self


class Rule(BaseModel):
    """Findings it matches -> what to do, how severe, after how many passes, for real or as a dry run."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=RULE_NAME)
    match: Match = Field(default_factory=Match)
    actions: list[Action] = Field(min_length=1, max_length=5)
    severity: Severity = "SEV3"
    confirm: Confirm = Field(default_factory=Confirm)
    dry_run: bool = Field(default=False, description="Record what it would do; do nothing")

    @field_validator("actions")
    @classmethod
    def _actions(cls, actions: list[Action]) -> list[Action]:
        if len(set(actions)) != len(actions):
            raise ValueError("an action is listed twice")
        if "record" in actions and len(actions) > 1:
            raise ValueError("'record' means record only: it cannot be combined with other actions")
        if "notify" in actions and "open_incident" not in actions:
            raise ValueError("'notify' pages about an incident: add 'open_incident'")
        return actions


class Recovery(BaseModel):
    """After `healthy_passes` passes in a row that match no rule, the incident is marked recovered."""

    model_config = ConfigDict(extra="forbid")
    healthy_passes: int = Field(default=3, ge=1, le=1000)
    resolve: bool = Field(default=False, description="Also resolve it (otherwise resolving stays a person's call)")


class Policy(BaseModel):
    """A model's response policy (or the default for every model)."""

    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(max_length=50)
    grouping: Literal["model", "model_monitor"] = Field(
        default="model", description="Breaches with the same key join one open incident")
    recovery: Recovery | None = Field(default_factory=Recovery)
    dry_run: bool = Field(default=False, description="Every rule only records what it would do")

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Rule]) -> list[Rule]:
        names = [r.name for r in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {twice}")
        return rules


DEFAULT_POLICY = Policy(rules=[
    Rule(name="data-quality", match=Match(kinds=[DetectorKind.DATA_QUALITY, DetectorKind.SKEW, DetectorKind.VOLUME]),
         actions=["pause_pipeline", "open_incident", "notify"], severity="SEV2"),
    # A KPI measured on one small window is noisy too (1 false alarm in 10 windows of 500 healthy events).
    Rule(name="model-kpi", match=Match(kinds=[DetectorKind.KPI, DetectorKind.ESTIMATED_KPI]),
         actions=["swap_model", "open_incident", "notify"], severity="SEV2", confirm=Confirm(k=2, n=3)),
    Rule(name="operational", match=Match(kinds=[DetectorKind.OPERATIONAL, DetectorKind.BUSINESS_KPI]),
         actions=["open_incident", "notify"], severity="SEV3", confirm=Confirm(k=2, n=3)),
    Rule(name="drift", match=Match(kinds=[DetectorKind.INPUT_DRIFT, DetectorKind.PREDICTION_DRIFT]),
         actions=["open_incident", "notify"], severity="SEV3", confirm=Confirm(k=2, n=3)),
])
