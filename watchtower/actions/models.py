"""An audit row per action taken, automatic or by an operator."""

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class ActionRun(SQLModel, table=True):
    """What one action did (or failed to do) about a breach or an operator request."""

    __tablename__ = "action_run"
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="monitored_model.id", index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    action: str = Field(max_length=50)
    ok: bool
    detail: str = Field(sa_column=Column(Text, nullable=False))
    author: str = Field(default="watchtower", max_length=200)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
