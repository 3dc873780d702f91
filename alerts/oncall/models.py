"""On-call tables: schedules, their rotation layers (with ordered participants) and overrides."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class Schedule(SQLModel, table=True):
    """Who is on call for something, in one IANA time zone (handoffs are wall-clock times in it)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    time_zone: str = Field(max_length=64)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RotationLayer(SQLModel, table=True):
    """Participants taking turns of `shift_length` `unit`s from `starts_on` at `handoff` (HH:MM, schedule zone).

    `priority`: a higher layer wins wherever it has someone. `restrictions` ({"weekdays": [...], "hours":
    [{"start", "end"}]}, or null for all the time) limit when this layer has anyone.
    """

    __tablename__ = "rotation_layer"
    __table_args__ = (UniqueConstraint("schedule_id", "name"), UniqueConstraint("schedule_id", "priority"))
    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(foreign_key="schedule.id", index=True)
    name: str = Field(max_length=100)
    priority: int
    shift_length: int
    unit: str = Field(max_length=8)
    handoff: str = Field(max_length=5)
    starts_on: date
    restrictions: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class RotationParticipant(SQLModel, table=True):
    """One place in a layer's turn order (a person may hold several)."""

    __tablename__ = "rotation_participant"
    __table_args__ = (UniqueConstraint("layer_id", "position"),)
    id: int | None = Field(default=None, primary_key=True)
    layer_id: int = Field(foreign_key="rotation_layer.id", index=True)
    position: int
    user_id: int = Field(foreign_key="app_user.id", index=True)


class ScheduleOverride(SQLModel, table=True):
    """`user_id` is on call from `starts_at` to `ends_at`, for `replaces_user_id` only or (null) for everybody."""

    __tablename__ = "schedule_override"
    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(foreign_key="schedule.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    replaces_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    starts_at: datetime
    ends_at: datetime = Field(index=True)
    author: str = Field(max_length=200)
    reason: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)
