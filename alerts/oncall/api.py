"""On-call schedules over JSON: schedules, rotation layers, overrides, who is on call, shifts and .ics feeds."""

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session, col, select

from alerts.oncall import ical, schedules, service
from alerts.oncall.layering import Shift, gaps
from alerts.oncall.models import Schedule
from alerts.oncall.schemas import (
    GapRead,
    OnCallAnswer,
    OnCallRead,
    OverrideCreate,
    OverrideRead,
    OverrideUpdate,
    RotationCreate,
    RotationRead,
    RotationUpdate,
    ScheduleCreate,
    ScheduleRead,
    ScheduleUpdate,
    ShiftRead,
    ShiftsAnswer,
    validated,
)
from watchtower.auth.access import PrincipalDep
from watchtower.auth.bearer import WriteAccess
from watchtower.auth.models import User
from watchtower.auth.principal import attributed
from watchtower.auth.users import Handle, get_user
from watchtower.clock import to_utc, utcnow
from watchtower.deps import SessionDep
from watchtower.errors import problem_responses
from watchtower.limits import Id

MAX_RANGE = timedelta(days=92)
DEFAULT_RANGE = timedelta(days=14)
FEED_BEFORE, FEED_AFTER = timedelta(days=7), timedelta(days=60)
router = APIRouter(tags=["on-call"], responses=problem_responses(404, 422))
writes = APIRouter(tags=["on-call"], dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422))
From = Annotated[datetime | None, Query(alias="from", description="Start (ISO 8601; no offset means UTC)")]
To = Annotated[datetime | None, Query(alias="to", description=f"End, after from, at most {MAX_RANGE.days} days on")]
ICS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "RFC 5545 calendar, times in UTC"}}


def span(start: datetime | None, end: datetime | None, default_start: datetime,
         default_length: timedelta) -> tuple[datetime, datetime]:
    """A bounded [from, to) range; a 422 naming `query.to` when it is empty or longer than MAX_RANGE."""
    start = to_utc(start) if start else default_start
    end = to_utc(end) if end else start + default_length
    reason = ("must be after from" if end <= start else
              f"at most {MAX_RANGE.days} days after from" if end - start > MAX_RANGE else None)
    if reason:
        raise RequestValidationError([{"loc": ("query", "to"), "msg": reason, "type": "value_error"}])
    return start, end


def shift_read(shift: Shift) -> ShiftRead:
    return ShiftRead(handle=shift.handle, source=shift.source, layer=shift.layer, override_id=shift.override_id,
                     replaces=shift.replaces, start=shift.start, end=shift.end)


@router.get("/schedules", response_model=list[ScheduleRead])
def list_schedules(session: SessionDep) -> list[ScheduleRead]:
    """Every schedule with its layers, by name."""
    return [service.schedule_read(session, s) for s in
            session.exec(select(Schedule).order_by(col(Schedule.name))).all()]


@router.get("/schedules/{schedule_id}", response_model=ScheduleRead)
def read_schedule(schedule_id: Id, session: SessionDep) -> ScheduleRead:
    """One schedule with its layers, highest priority first."""
    return service.schedule_read(session, schedules.get_schedule(session, schedule_id))


@writes.post("/schedules", response_model=ScheduleRead, status_code=201)
def add_schedule(body: ScheduleCreate, session: SessionDep) -> ScheduleRead:
    """A new schedule (409 if the name is taken); add rotations to it next."""
    schedule = service.save_schedule(session, Schedule(name=body.name, time_zone=body.time_zone), body)
    session.commit()
    return service.schedule_read(session, schedule)


@writes.patch("/schedules/{schedule_id}", response_model=ScheduleRead)
def edit_schedule(schedule_id: Id, body: ScheduleUpdate, session: SessionDep) -> ScheduleRead:
    """Rename, re-describe or move a schedule to another zone (handoffs keep their wall-clock time in it)."""
    schedule = schedules.get_schedule(session, schedule_id)
    merged = schedule.model_dump(include={"name", "time_zone", "description"}) | body.model_dump(exclude_unset=True)
    service.save_schedule(session, schedule, validated(ScheduleCreate, merged))
    session.commit()
    return service.schedule_read(session, schedule)


@writes.delete("/schedules/{schedule_id}", status_code=204)
def remove_schedule(schedule_id: Id, session: SessionDep) -> Response:
    """Delete a schedule, its layers and its overrides."""
    service.delete_schedule(session, schedules.get_schedule(session, schedule_id))
    session.commit()
    return Response(status_code=204)


@router.get("/schedules/{schedule_id}/rotations/{rotation_id}", response_model=RotationRead)
def read_rotation(schedule_id: Id, rotation_id: Id, session: SessionDep) -> RotationRead:
    """One rotation layer."""
    layer = service.get_layer(session, schedule_id, rotation_id)
    return RotationRead(id=rotation_id, **service.layer_body(session, layer))


@writes.post("/schedules/{schedule_id}/rotations", response_model=RotationRead, status_code=201)
def add_rotation(schedule_id: Id, body: RotationCreate, session: SessionDep) -> RotationRead:
    """A new layer: 422 naming unknown people or bad fields, 409 naming a taken name or priority."""
    read = service.save_layer(session, schedule_id, None, body)
    session.commit()
    return read


@writes.patch("/schedules/{schedule_id}/rotations/{rotation_id}", response_model=RotationRead)
def edit_rotation(schedule_id: Id, rotation_id: Id, body: RotationUpdate, session: SessionDep) -> RotationRead:
    """Change a layer; the result is checked as a whole. Turns are recomputed from the layer's start."""
    layer = service.get_layer(session, schedule_id, rotation_id)
    merged = service.layer_body(session, layer) | body.model_dump(exclude_unset=True, mode="json")
    read = service.save_layer(session, schedule_id, layer, validated(RotationCreate, merged))
    session.commit()
    return read


@writes.delete("/schedules/{schedule_id}/rotations/{rotation_id}", status_code=204)
def remove_rotation(schedule_id: Id, rotation_id: Id, session: SessionDep) -> Response:
    """Delete a layer."""
    service.delete_layer(session, service.get_layer(session, schedule_id, rotation_id))
    session.commit()
    return Response(status_code=204)


@router.get("/schedules/{schedule_id}/overrides", response_model=list[OverrideRead])
def list_overrides(schedule_id: Id, session: SessionDep, start: From = None, end: To = None) -> list[OverrideRead]:
    """Overrides overlapping [from, to) (default: from now, for 92 days), by start."""
    schedules.get_schedule(session, schedule_id)
    start, end = span(start, end, utcnow(), MAX_RANGE)
    return [service.override_read(session, o) for o in service.overrides_between(session, schedule_id, start, end)]


@router.get("/schedules/{schedule_id}/overrides/{override_id}", response_model=OverrideRead)
def read_override(schedule_id: Id, override_id: Id, session: SessionDep) -> OverrideRead:
    """One override."""
    return service.override_read(session, service.get_override(session, schedule_id, override_id))


@writes.post("/schedules/{schedule_id}/overrides", response_model=OverrideRead, status_code=201)
def add_override(schedule_id: Id, body: OverrideCreate, session: SessionDep, principal: PrincipalDep) -> OverrideRead:
    """Someone covers a time range, for everybody or (`replaces`) for one person; overrides win over all layers,
    and a later override wins over an earlier one."""
    override = service.save_override(session, schedule_id, None, attributed(body, principal))
    session.commit()
    return service.override_read(session, override)


@writes.patch("/schedules/{schedule_id}/overrides/{override_id}", response_model=OverrideRead)
def edit_override(schedule_id: Id, override_id: Id, body: OverrideUpdate, session: SessionDep,
                  principal: PrincipalDep) -> OverrideRead:
    """Change an override; the result is checked as a whole, and the person who changed it is its author."""
    override = service.get_override(session, schedule_id, override_id)
    current = service.override_read(session, override).model_dump(
        mode="json", include={"user", "replaces", "start", "end", "author", "reason"})
    merged = current | body.model_dump(exclude_unset=True, mode="json")
    service.save_override(session, schedule_id, override, attributed(validated(OverrideCreate, merged), principal))
    session.commit()
    return service.override_read(session, override)


@writes.delete("/schedules/{schedule_id}/overrides/{override_id}", status_code=204)
def remove_override(schedule_id: Id, override_id: Id, session: SessionDep) -> Response:
    """Delete an override."""
    session.delete(service.get_override(session, schedule_id, override_id))
    session.commit()
    return Response(status_code=204)


@router.get("/schedules/{schedule_id}/oncall", response_model=OnCallAnswer)
def who_is_oncall(schedule_id: Id, session: SessionDep,
                  at: Annotated[datetime | None, Query(description="Default now; no offset means UTC")] = None,
                  ) -> OnCallAnswer:
    """Who is on call at `at`, why (which layer, which override) and for how long; empty in a gap."""
    schedule = schedules.get_schedule(session, schedule_id)
    moment = to_utc(at) if at else utcnow()
    shift = schedules.shift_now(session, schedule, moment)
    names = dict(session.exec(select(User.handle, User.display_name)).all())
    oncall = [] if shift is None else [OnCallRead(
        handle=shift.handle, display_name=names.get(shift.handle, shift.handle), source=shift.source,
        layer=shift.layer, override_id=shift.override_id, replaces=shift.replaces, shift_start=shift.start,
        shift_end=shift.end)]
    return OnCallAnswer(schedule=schedule.name, at=moment, oncall=oncall)


@router.get("/schedules/{schedule_id}/shifts", response_model=ShiftsAnswer)
def list_shifts(schedule_id: Id, session: SessionDep, start: From = None, end: To = None) -> ShiftsAnswer:
    """The final shifts of [from, to) after layering and overrides, clipped to it, and the gaps between them
    (default: from now, 14 days; at most 92 days)."""
    schedule = schedules.get_schedule(session, schedule_id)
    start, end = span(start, end, utcnow(), DEFAULT_RANGE)
    shifts = schedules.final_shifts(session, schedule, start, end)
    return ShiftsAnswer.model_validate({
        "schedule": schedule.name, "time_zone": schedule.time_zone, "from": start, "to": end,
        "shifts": [shift_read(s) for s in shifts],
        "gaps": [GapRead(start=g.start, end=g.end) for g in gaps(shifts, start, end)]})


def _event(schedule: Schedule, shift: Shift, summary: str) -> ical.Event:
    why = shift.source + (f" for {shift.replaces}" if shift.replaces else "")
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", shift.source)  # a UID is TEXT: keep it to plain characters
    return ical.Event(uid=f"schedule-{schedule.id}-{key}-{ical.stamp(shift.start)}@watchtower", start=shift.start,
                      end=shift.end, summary=summary, description=f"{schedule.name}: {shift.handle} ({why})")


def _feed(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    now = utcnow()
    return span(start or now - FEED_BEFORE, end, now, FEED_BEFORE + FEED_AFTER)


@router.get("/schedules/{schedule_id}/shifts.ics", response_class=Response, responses=ICS)
def schedule_feed(schedule_id: Id, session: SessionDep, start: From = None, end: To = None) -> Response:
    """The schedule's final shifts as a calendar (default: a week back to 60 days ahead)."""
    schedule = schedules.get_schedule(session, schedule_id)
    start, end = _feed(start, end)
    events = [_event(schedule, s, f"On call: {s.handle} ({schedule.name})")
              for s in schedules.final_shifts(session, schedule, start, end)]
    return _ics(ical.calendar(f"On call: {schedule.name}", events, utcnow()))


@router.get("/users/{handle}/shifts.ics", response_class=Response, responses=ICS)
def user_feed(handle: Handle, session: SessionDep, start: From = None, end: To = None) -> Response:
    """One person's final shifts in every schedule, as a calendar (default: a week back to 60 days ahead)."""
    user = get_user(session, handle)
    start, end = _feed(start, end)
    events = [_event(schedule, s, f"On call: {schedule.name}") for schedule in _all(session)
              for s in schedules.final_shifts(session, schedule, start, end) if s.handle == user.handle]
    return _ics(ical.calendar(f"On call: {user.display_name}", sorted(events, key=lambda e: e.start), utcnow()))


def _all(session: Session) -> list[Schedule]:
    return list(session.exec(select(Schedule).order_by(col(Schedule.name))).all())


def _ics(body: str) -> Response:
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": 'inline; filename="shifts.ics"'})


router.include_router(writes)
