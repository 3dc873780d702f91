"""Who is on call: schedules read from the database and resolved by the pure functions in rotation.py and
layering.py. Every function takes the moment it answers for (`at`, `start`/`end`); none reads the clock."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from alerts.oncall.layering import Cover, Shift, resolve, shift_at
from alerts.oncall.models import RotationLayer, RotationParticipant, Schedule, ScheduleOverride
from alerts.oncall.rotation import DAY_MINUTES, WEEKDAYS, Restrictions, Rotation
from alerts.oncall.schemas import minutes
from watchtower.auth.models import User
from watchtower.clock import to_utc
from watchtower.errors import NotFound

DST_SLACK = timedelta(days=1)  # a shift's real length can exceed its wall-clock length by a DST change


@dataclass(frozen=True)
class OnCall:
    """Someone on call, why (`source`: "layer <name>" or "override #<id>"), and the final shift they are on."""

    handle: str
    source: str
    shift_start: datetime
    shift_end: datetime


def schedule_by_name(session: Session, name: str) -> Schedule:
    """The schedule with this name, or NotFound."""
    schedule = session.exec(select(Schedule).where(Schedule.name == name)).first()
    if schedule is None:
        raise NotFound(f"no schedule named '{name}'")
    return schedule


def get_schedule(session: Session, schedule_id: int) -> Schedule:
    """The schedule with this id, or NotFound."""
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"no schedule with id {schedule_id}")
    return schedule


def layers_of(session: Session, schedule_id: int) -> list[RotationLayer]:
    """A schedule's layers, highest priority first."""
    return list(session.exec(select(RotationLayer).where(RotationLayer.schedule_id == schedule_id)
                             .order_by(col(RotationLayer.priority).desc())).all())


def participants_of(session: Session, layer_ids: Sequence[int]) -> dict[int, list[User]]:
    """Each layer's people in turn order."""
    rows = session.exec(select(RotationParticipant, User).join(User)
                        .where(col(RotationParticipant.layer_id).in_(list(layer_ids)))
                        .order_by(col(RotationParticipant.layer_id), col(RotationParticipant.position))).all()
    out: dict[int, list[User]] = {layer_id: [] for layer_id in layer_ids}
    for place, user in rows:
        out[place.layer_id].append(user)
    return out


def restrictions_of(stored: dict[str, object] | None) -> Restrictions | None:
    """The stored JSON restrictions as the pure form rotation.py works with."""
    if stored is None:
        return None
    days, hours = stored.get("weekdays"), stored.get("hours")
    weekdays = frozenset(WEEKDAYS.index(d) for d in days) if isinstance(days, list) else frozenset(range(7))
    windows = (tuple((minutes(w["start"]), minutes(w["end"])) for w in hours) if isinstance(hours, list)
               else ((0, DAY_MINUTES),))
    return Restrictions(weekdays, windows)


def rotations(session: Session, schedule: Schedule) -> list[Rotation]:
    """The schedule's layers as rotations. Deactivated people are left out of the turn order (the others'
    turns are counted from the start again), so nobody who cannot answer is ever on call."""
    layers = layers_of(session, schedule.id or 0)
    people = participants_of(session, [layer.id or 0 for layer in layers])
    zone = ZoneInfo(schedule.time_zone)
    return [Rotation(layer.name, layer.priority, tuple(u.handle for u in people[layer.id or 0] if u.active),
                     layer.shift_length, layer.unit,  # type: ignore[arg-type]
                     time.fromisoformat(layer.handoff), layer.starts_on, zone, restrictions_of(layer.restrictions))
            for layer in layers]


def covers(session: Session, schedule_id: int, start: datetime, end: datetime) -> list[Cover]:
    """The overrides overlapping [start, end) by active people (a deactivated person covers for nobody)."""
    handles = dict(session.exec(select(User.id, User.handle)).all())
    active = set(session.exec(select(User.id).where(col(User.active))).all())
    rows = session.exec(select(ScheduleOverride).where(
        ScheduleOverride.schedule_id == schedule_id, col(ScheduleOverride.starts_at) < end,
        col(ScheduleOverride.ends_at) > start)).all()
    return [Cover(o.id or 0, handles[o.user_id], handles.get(o.replaces_user_id or 0), to_utc(o.starts_at),
                  to_utc(o.ends_at)) for o in rows if o.user_id in active]


def final_shifts(session: Session, schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The final shifts of [start, end), clipped to it."""
    start, end = to_utc(start), to_utc(end)
    return resolve(rotations(session, schedule), covers(session, schedule.id or 0, start, end), start, end)


def shift_now(session: Session, schedule: Schedule, at: datetime) -> Shift | None:
    """The whole final shift under way at `at` (not clipped), or None in a gap."""
    at = to_utc(at)
    layers = rotations(session, schedule)
    here = covers(session, schedule.id or 0, at, at + timedelta(microseconds=1))
    # The shift holding `at` lies within one layer turn or one override: look that far either way.
    reach = max([layer.step + DST_SLACK for layer in layers] + [c.end - c.start for c in here] + [DST_SLACK])
    start, end = at - reach, at + reach
    return shift_at(resolve(layers, covers(session, schedule.id or 0, start, end), start, end), at)


def oncall_at(session: Session, schedule_id: int, at: datetime) -> list[OnCall]:
    """Who is on call for the schedule at `at` (empty in a gap), why, and the bounds of their shift."""
    shift = shift_now(session, get_schedule(session, schedule_id), at)
    return [] if shift is None else [OnCall(shift.handle, shift.source, shift.start, shift.end)]
