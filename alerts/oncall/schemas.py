"""What the on-call API takes and returns; every refusal names its field."""

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from alerts.oncall.rotation import UNIT_DELTA, WEEKDAYS
from watchtower.auth.models import HANDLE
from watchtower.limits import EARLIEST, LATEST, Day

CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Handle = Annotated[str, Field(pattern=HANDLE)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MIN_HOURS = 2  # a 1-hour shift could fall wholly inside the hour a spring-forward night skips
LONGEST_SHIFT = timedelta(weeks=52)
LONGEST_OVERRIDE = timedelta(days=366)
Model = TypeVar("Model", bound=BaseModel)
assert WEEKDAYS == Weekday.__args__  # type: ignore[attr-defined]


def zone_name(name: str) -> str:
    """An IANA time zone name, or ValueError saying what is expected."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'") from exc
    if name != "UTC" and name not in available_timezones():
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'")
    return name


def minutes(clock: str) -> int:
    """'HH:MM' (or '24:00') as minutes after midnight."""
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$", description="Unique; no outer spaces")
    time_zone: str = Field(max_length=64, description="IANA zone; handoffs and restrictions are wall-clock in it")
    description: str = Field(default="", max_length=2000)

    _tz = field_validator("time_zone")(zone_name)


class ScheduleUpdate(BaseModel):
    """Fields to change; absent ones stay."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    time_zone: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=2000)


class HoursWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=CLOCK, description="HH:MM, schedule zone")
    end: str = Field(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", description="HH:MM or 24:00, after start")

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and minutes(value) <= minutes(start):
            raise ValueError("must be after start (split a window across midnight into two: 22:00-24:00 and "
                             "00:00-06:00)")
        return value


class RestrictionsIn(BaseModel):
    """When a layer has someone: on these weekdays, within these hours (both in the schedule's zone)."""

    model_config = ConfigDict(extra="forbid")
    weekdays: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)
    hours: list[HoursWindow] | None = Field(default=None, min_length=1, max_length=24, validate_default=True)

    @field_validator("weekdays")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("names a weekday twice")
        return value

    @field_validator("hours")
    @classmethod
    def _some(cls, value: list[HoursWindow] | None, info: ValidationInfo) -> list[HoursWindow] | None:
        if value is None and info.data.get("weekdays") is None:
            raise ValueError("give weekdays, hours or both (or no restrictions at all)")
        return value


class RotationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")
    priority: int = Field(default=0, ge=0, le=1000, description="Higher wins where it has someone; unique")
    participants: list[Handle] = Field(min_length=1, max_length=100, description="Handles, in turn order")
    unit: Literal["hours", "days", "weeks"]
    # The bound keeps the length arithmetic in range before the 52-week check below names the real limit.
    shift_length: int = Field(ge=1, le=52 * 7 * 24,
                              description=f"In units; hours: at least {MIN_HOURS}; at most 52 weeks")
    handoff: str = Field(default="09:00", pattern=CLOCK, description="HH:MM in the schedule's zone")
    start: Day = Field(description="The first shift starts on this day at the handoff time")
    restrictions: RestrictionsIn | None = None

    @field_validator("shift_length")
    @classmethod
    def _sane_length(cls, value: int, info: ValidationInfo) -> int:
        unit = info.data.get("unit")
        if unit == "hours" and value < MIN_HOURS:
            raise ValueError(f"hour shifts last at least {MIN_HOURS} hours: a 1-hour shift can fall wholly inside "
                             "the hour a spring-forward night skips, and nobody would be on call for it")
        if unit is not None and value * UNIT_DELTA[unit] > LONGEST_SHIFT:
            raise ValueError("a shift lasts at most 52 weeks")
        return value


class RotationUpdate(BaseModel):
    """Fields to change; absent ones stay (the result is checked as a whole)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    priority: int | None = None
    participants: list[str] | None = None
    unit: str | None = None
    shift_length: int | None = None
    handoff: str | None = None
    start: date | None = None
    restrictions: dict[str, Any] | None = None


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


# An explicit offset is required (what would a bare time mean?), and the moment is within the stored range.
InRange = Annotated[AwareDatetime, AfterValidator(_in_range)]


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Handle = Field(description="Who covers")
    replaces: Handle | None = Field(default=None, description="Whom they stand in for; absent: everybody")
    start: InRange
    end: InRange = Field(description="After start; at most 366 days later")
    author: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=1000)

    @field_validator("replaces")
    @classmethod
    def _not_self(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == info.data.get("user"):
            raise ValueError("cannot be the same person as user")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after start")
        if start is not None and value - start > LONGEST_OVERRIDE:
            raise ValueError("an override lasts at most 366 days")
        return value


class OverrideUpdate(BaseModel):
    """Fields to change; absent ones stay (the result is checked as a whole)."""

    model_config = ConfigDict(extra="forbid")
    user: str | None = None
    replaces: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    reason: str | None = None


def validated(model: type[Model], data: dict[str, Any]) -> Model:
    """`data` checked by `model`, refused as a request error naming body fields (for merged PATCH bodies)."""
    from fastapi.exceptions import RequestValidationError  # the API's; the scheduler imports this module too

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc


class RotationRead(BaseModel):
    id: int
    name: str
    priority: int
    participants: list[str]
    unit: str
    shift_length: int
    handoff: str
    start: date
    restrictions: dict[str, Any] | None


class ScheduleRead(BaseModel):
    id: int
    name: str
    time_zone: str
    description: str
    rotations: list[RotationRead]
    created_at: datetime
    updated_at: datetime


class OverrideRead(BaseModel):
    id: int
    schedule_id: int
    user: str
    replaces: str | None
    start: datetime
    end: datetime
    author: str
    reason: str
    created_at: datetime


class OnCallRead(BaseModel):
    handle: str
    display_name: str
    source: str = Field(description="'layer <name>' or 'override #<id>'")
    layer: str | None
    override_id: int | None
    replaces: str | None = Field(description="Whom the override stands in for; null: everybody, or a layer shift")
    shift_start: datetime
    shift_end: datetime


class OnCallAnswer(BaseModel):
    schedule: str
    at: datetime
    oncall: list[OnCallRead] = Field(description="Empty: a gap, nobody is on call")


class ShiftRead(BaseModel):
    handle: str
    source: str
    layer: str | None
    override_id: int | None
    replaces: str | None
    start: datetime
    end: datetime


class GapRead(BaseModel):
    start: datetime
    end: datetime


class ShiftsAnswer(BaseModel):
    schedule: str
    time_zone: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")  # `from` is a Python keyword: build with model_validate
    shifts: list[ShiftRead]
    gaps: list[GapRead]

    model_config = ConfigDict(populate_by_name=True)
