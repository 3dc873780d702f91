"""Escalation tables: policies (ordered steps, repeated), which policy each model routes to, and each
incident's escalation, frozen when it started (so editing a policy never changes pages in flight)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class EscalationPolicy(SQLModel, table=True):
    """Steps ([{"delay_minutes", "targets": [{"schedule"|"user"|"channel"|"user_group": name}]}]) run in
    order, the chain `repeat` more times; `is_default` routes every model without a route of its own here."""

    __tablename__ = "escalation_policy"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    description: str = Field(default="", max_length=2000)
    repeat: int = 0
    is_default: bool = False
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EscalationRoute(SQLModel, table=True):
    """A model's own escalation policy (instead of the default)."""

    __tablename__ = "escalation_route"
    model_id: int = Field(foreign_key="monitored_model.id", primary_key=True)
    policy_id: int = Field(foreign_key="escalation_policy.id", index=True)


class IncidentEscalation(SQLModel, table=True):
    """One incident's escalation: the frozen chain and where it stands (survives restarts).

    `state`: active (steps run when `next_at` comes), exhausted (every step and repeat ran, nobody
    acknowledged), acknowledged (stopped; re-paged after the ack timeout while still breaching), done
    (resolved). `acked_at`: the acknowledgement that stopped it.
    """

    __tablename__ = "incident_escalation"
    incident_id: int = Field(foreign_key="incident.id", primary_key=True)
    policy: str = Field(max_length=100)
    chain: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default="active", max_length=16, index=True)
    step: int = 0
    repeats_done: int = 0
    next_at: datetime | None = None
    acked_at: datetime | None = None
    started_at: datetime
    updated_at: datetime
