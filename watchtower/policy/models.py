"""Tables of the response layer: stored policies and one decision per monitor pass."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class ResponsePolicy(SQLModel, table=True):
    """A model's policy, or the default for all models (model_id NULL); absent: the built-in default."""

    __tablename__ = "response_policy"
    id: int | None = Field(default=None, primary_key=True)
    model_id: int | None = Field(default=None, foreign_key="monitored_model.id", unique=True)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(max_length=200)
    updated_at: datetime = Field(default_factory=utcnow)


class PolicyDecision(SQLModel, table=True):
    """What the policy made of one monitor pass: rules matched and fired, actions done, held or only recorded.

    Confirmation (k of n) and recovery read these rows; backtests compare against them.
    """

    __tablename__ = "policy_decision"
    __table_args__ = (Index("ix_policy_decision_monitor_at", "monitor_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id", index=True)
    monitor_id: int = Field(foreign_key="monitor.id")
    at: datetime = Field(default_factory=utcnow)
    verdict: bool  # False: no detector reached a verdict; such passes neither confirm nor recover
    matched: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    fired: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # [{"action", "rule", "outcome": done | failed | held | dry_run, "detail"}]
    actions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    severity: str | None = Field(default=None, max_length=10)
    explanation: str = Field(default="", sa_column=Column(Text, nullable=False))
    policy_scope: str = Field(default="default", max_length=20)  # builtin | default | model
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)


class ActionHold(SQLModel, table=True):
    """An operator's decision that holds one automatic action for a model (after a restore or a resume).

    It holds while nobody re-armed it (released_at), before `until`, and while the incident it was taken on is
    active (computed when read, so resolving the incident is all it takes).
    """

    __tablename__ = "action_hold"
    __table_args__ = (Index("ix_action_hold_model_action", "model_id", "action"),)
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id")
    action: str = Field(max_length=50)  # swap_model | pause_pipeline
    author: str = Field(max_length=200)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    since: datetime = Field(default_factory=utcnow)
    until: datetime | None = None
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    released_at: datetime | None = None  # re-armed (or replaced by a newer hold) by released_by
    released_by: str | None = Field(default=None, max_length=200)
    release_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The incident severity last alerted about a breach during the hold: alert once, and again only if it rises.
    alerted_severity: str | None = Field(default=None, max_length=10)
    alerted_at: datetime | None = None
