"""Writing schedules, rotation layers and overrides. Services add and flush; the route commits."""

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from alerts.oncall.models import RotationLayer, RotationParticipant, Schedule, ScheduleOverride
from alerts.oncall.schedules import get_schedule, layers_of, participants_of
from alerts.oncall.schemas import (
    OverrideCreate,
    OverrideRead,
    RotationCreate,
    RotationRead,
    ScheduleCreate,
    ScheduleRead,
)
from watchtower.auth.models import User
from watchtower.clock import to_utc, utcnow
from watchtower.errors import Conflict, Invalid, NotFound, field_error

Row = TypeVar("Row", RotationLayer, ScheduleOverride)


def people(session: Session, handles: list[str], field: str, *, active: bool = True) -> list[User]:
    """The people with these handles, in order; Invalid (422) naming each unknown one, and each deactivated one
    unless `active` is False (a layer may keep them: they are left out of its turns until reactivated)."""
    found = {u.handle: u for u in session.exec(select(User).where(col(User.handle).in_(handles))).all()}
    errors = []
    for i, handle in enumerate(handles):
        name = f"{field}.{i}" if field.endswith("participants") else field
        if handle not in found:
            errors.append(field_error(name, f"no user with handle '{handle}' (add them with POST /users)"))
        elif active and not found[handle].active:
            errors.append(field_error(name, f"'{handle}' is deactivated"))
    if errors:
        raise Invalid("; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors)
    return [found[h] for h in handles]


def _flush(session: Session, row: Any, clash: str, field: str) -> None:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(clash, errors=[field_error(field, clash)]) from exc


def schedule_read(session: Session, schedule: Schedule) -> ScheduleRead:
    """A schedule with its layers, highest priority first."""
    layers = layers_of(session, schedule.id or 0)
    people_of = participants_of(session, [layer.id or 0 for layer in layers])
    return ScheduleRead(**schedule.model_dump(), rotations=[layer_read(layer, people_of[layer.id or 0])
                                                           for layer in layers])


def layer_read(layer: RotationLayer, members: list[User]) -> RotationRead:
    return RotationRead(id=layer.id or 0, name=layer.name, priority=layer.priority,
                        participants=[u.handle for u in members], unit=layer.unit, shift_length=layer.shift_length,
                        handoff=layer.handoff, start=layer.starts_on, restrictions=layer.restrictions)


def save_schedule(session: Session, schedule: Schedule, body: ScheduleCreate) -> Schedule:
    """Create or change a schedule (409 naming `name` if another schedule has it)."""
    for key, value in body.model_dump().items():
        setattr(schedule, key, value)
    schedule.updated_at = utcnow()
    _flush(session, schedule, f"a schedule named '{body.name}' exists", "body.name")
    return schedule


def delete_schedule(session: Session, schedule: Schedule) -> None:
    """Remove a schedule with its layers and overrides."""
    for layer in layers_of(session, schedule.id or 0):
        delete_layer(session, layer)
    for override in session.exec(select(ScheduleOverride).where(ScheduleOverride.schedule_id == schedule.id)):
        session.delete(override)
    session.flush()
    session.delete(schedule)
    session.flush()


def get_layer(session: Session, schedule_id: int, layer_id: int) -> RotationLayer:
    layer = session.get(RotationLayer, layer_id)
    if layer is None or layer.schedule_id != schedule_id:
        raise NotFound(f"schedule {schedule_id} has no rotation {layer_id}")
    return layer


def save_layer(session: Session, schedule_id: int, layer: RotationLayer | None, body: RotationCreate) -> RotationRead:
    """Create (layer None) or change a rotation layer: 422 naming unknown people, 409 naming a taken name or
    priority."""
    get_schedule(session, schedule_id)
    members = people(session, body.participants, "body.participants", active=False)
    for field, value in (("name", body.name), ("priority", body.priority)):
        other = session.exec(select(RotationLayer).where(RotationLayer.schedule_id == schedule_id,
                                                         getattr(RotationLayer, field) == value)).first()
        if other is not None and (layer is None or other.id != layer.id):
            reason = f"layer '{other.name}' of this schedule has {field} {value!r}"
            raise Conflict(reason, errors=[field_error(f"body.{field}", reason)])
    fields = {"schedule_id": schedule_id, "name": body.name, "priority": body.priority,
              "shift_length": body.shift_length, "unit": body.unit, "handoff": body.handoff, "starts_on": body.start,
              "restrictions": None if body.restrictions is None else body.restrictions.model_dump(mode="json")}
    layer = _fill(layer, RotationLayer, fields)
    _flush(session, layer, "another layer has this name or priority", "body.name")
    for place in session.exec(select(RotationParticipant).where(RotationParticipant.layer_id == layer.id)):
        session.delete(place)
    session.flush()
    for position, user in enumerate(members):
        session.add(RotationParticipant(layer_id=layer.id or 0, position=position, user_id=user.id or 0))
    session.flush()
    return layer_read(layer, members)


def _fill(row: Row | None, table: type[Row], fields: dict[str, Any]) -> Row:
    """A new row of `table` with `fields`, or `row` with them set."""
    if row is None:
        return table.model_validate(fields)
    for key, value in fields.items():
        setattr(row, key, value)
    return row


def delete_layer(session: Session, layer: RotationLayer) -> None:
    for place in session.exec(select(RotationParticipant).where(RotationParticipant.layer_id == layer.id)):
        session.delete(place)
    session.flush()
    session.delete(layer)
    session.flush()


def layer_body(session: Session, layer: RotationLayer) -> dict[str, Any]:
    """A layer as the body that would create it (the base a PATCH is merged onto)."""
    members = participants_of(session, [layer.id or 0])[layer.id or 0]
    return layer_read(layer, members).model_dump(mode="json", exclude={"id"})


def get_override(session: Session, schedule_id: int, override_id: int) -> ScheduleOverride:
    override = session.get(ScheduleOverride, override_id)
    if override is None or override.schedule_id != schedule_id:
        raise NotFound(f"schedule {schedule_id} has no override {override_id}")
    return override


def save_override(session: Session, schedule_id: int, override: ScheduleOverride | None,
                  body: OverrideCreate) -> ScheduleOverride:
    """Create (override None) or change an override (422 naming an unknown or deactivated person)."""
    get_schedule(session, schedule_id)
    (user,) = people(session, [body.user], "body.user")
    replaces = people(session, [body.replaces], "body.replaces")[0] if body.replaces else None
    override = _fill(override, ScheduleOverride, {
        "schedule_id": schedule_id, "user_id": user.id, "replaces_user_id": replaces.id if replaces else None,
        "starts_at": to_utc(body.start), "ends_at": to_utc(body.end), "author": body.author, "reason": body.reason})
    session.add(override)
    session.flush()
    return override


def overrides_between(session: Session, schedule_id: int, start: datetime, end: datetime) -> list[ScheduleOverride]:
    """Overrides overlapping [start, end), by start."""
    return list(session.exec(select(ScheduleOverride).where(
        ScheduleOverride.schedule_id == schedule_id, col(ScheduleOverride.starts_at) < end,
        col(ScheduleOverride.ends_at) > start).order_by(col(ScheduleOverride.starts_at))).all())


def override_read(session: Session, override: ScheduleOverride) -> OverrideRead:
    handles = dict(session.exec(select(User.id, User.handle).where(
        col(User.id).in_([override.user_id, override.replaces_user_id or 0]))).all())
    return OverrideRead(id=override.id or 0, schedule_id=override.schedule_id, user=handles[override.user_id],
                        replaces=handles.get(override.replaces_user_id or 0), start=override.starts_at,
                        end=override.ends_at, author=override.author, reason=override.reason,
                        created_at=override.created_at)
