"""The silence table: matchers, when it holds, who set it and why."""

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow

State = Literal["pending", "active", "expired"]


class Silence(SQLModel, table=True):
    """Pages for breaches its matchers match are held from `starts_at` until `ends_at` (the breach is still
    recorded). Expiring one early sets `ends_at` to then; rows are kept as the audit trail."""

    __tablename__ = "silence"
    __table_args__ = (Index("ix_silence_ends_at_starts_at", "ends_at", "starts_at"),)
    id: int | None = Field(default=None, primary_key=True)
    # [{"name", "is_regex", "is_equal", "value"}]: see alerts/silences/matchers.py
    matchers: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    starts_at: datetime
    ends_at: datetime
    created_by: str = Field(max_length=200)
    comment: str = Field(sa_column=Column(Text, nullable=False))
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)  # set from an incident
    expired_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    def state(self, now: datetime) -> State:
        """Alertmanager's status: pending before it starts, active until it ends, expired after."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"
