"""Rotations in the wall-clock time of a schedule's zone: when each shift starts, whose turn it is, and which
hours a restricted layer covers. Pure functions of their arguments (no clock, no database).

Like GoAlert (schedule/rotation/rotation.go), the k-th handoff is the start's wall-clock time plus k shift
lengths, added to the local date and time rather than to the instant: a weekly 09:00 handoff stays at 09:00
through both daylight-saving changes, and every turn follows the previous one, so nobody is skipped.
A wall-clock time that does not exist (02:30 on a spring-forward night in Berlin) is taken as the moment the
clocks jump (03:00 local); one that happens twice (02:30 on a fall-back night) as its first occurrence.
"""

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Unit = Literal["hours", "days", "weeks"]
UNIT_DELTA: dict[str, timedelta] = {"hours": timedelta(hours=1), "days": timedelta(days=1),
                                    "weeks": timedelta(weeks=1)}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Restrictions:
    """When a layer has someone: on these weekdays (0 = Monday), within these [start, end) minutes of the day."""

    weekdays: frozenset[int] = frozenset(range(7))
    windows: tuple[tuple[int, int], ...] = ((0, DAY_MINUTES),)


@dataclass(frozen=True)
class Rotation:
    """One layer: ordered participants taking turns of `length` units from `start` at `handoff`, in `zone`."""

    name: str
    priority: int
    participants: tuple[str, ...]
    length: int
    unit: Unit
    handoff: time
    start: date
    zone: ZoneInfo
    restrictions: Restrictions | None = None

    @property
    def step(self) -> timedelta:
        """One shift, as wall-clock time."""
        return self.length * UNIT_DELTA[self.unit]

    @property
    def first_handoff(self) -> datetime:
        """The first handoff as a naive local (wall-clock) time."""
        return datetime.combine(self.start, self.handoff)


@dataclass(frozen=True)
class Turn:
    """Shift number `index` of a rotation: `handle` is on it from `start` to `end` (UTC)."""

    handle: str
    index: int
    start: datetime
    end: datetime


def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a naive wall-clock time names in `zone`: a skipped time is the moment the clocks jump
    past it, a repeated one its first occurrence."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=1 reads the time with the offset after the jump, which lands before the jump; the jump
    # lies between the two readings, at the first second whose local time is at or after `wall`.
    low = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(first.timestamp())
    while high - low > 1:  # zone transitions fall on whole seconds
        middle = (low + high) // 2
        if local(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time an instant shows in `zone`."""
    return instant.astimezone(zone).replace(tzinfo=None)


def handoff_at(rotation: Rotation, index: int) -> datetime:
    """When shift `index` starts (UTC)."""
    return to_instant(rotation.first_handoff + index * rotation.step, rotation.zone)


def shift_index(rotation: Rotation, at: datetime) -> int:
    """The number of the shift under way at `at` (negative before the rotation starts)."""
    index = (local(at, rotation.zone) - rotation.first_handoff) // rotation.step
    # The local reading is off by one inside a repeated (fall-back) hour; the handoff instants decide.
    while handoff_at(rotation, index + 1) <= at:
        index += 1
    while handoff_at(rotation, index) > at:
        index -= 1
    return index


def turns(rotation: Rotation, start: datetime, end: datetime) -> Iterator[Turn]:
    """Every shift that overlaps [start, end), whole (not clipped), in order."""
    if not rotation.participants:
        return
    index = max(shift_index(rotation, start), 0)
    begins = handoff_at(rotation, index)
    while begins < end:
        ends = handoff_at(rotation, index + 1)
        if ends > start:
            yield Turn(rotation.participants[index % len(rotation.participants)], index, begins, ends)
        index, begins = index + 1, ends


def covered(restrictions: Restrictions, zone: ZoneInfo, start: datetime,
            end: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) a restricted layer covers, merged, in order."""
    spans: list[tuple[datetime, datetime]] = []
    day = local(start, zone).date() - timedelta(days=1)
    last = local(end, zone).date() + timedelta(days=1)
    while day <= last:
        if day.weekday() in restrictions.weekdays:
            midnight = datetime.combine(day, time())
            for first, final in sorted(restrictions.windows):
                a = max(to_instant(midnight + timedelta(minutes=first), zone), start)
                b = min(to_instant(midnight + timedelta(minutes=final), zone), end)
                if a < b:
                    spans.append((a, b))
        day += timedelta(days=1)
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def layer_segments(rotation: Rotation, start: datetime, end: datetime) -> list[tuple[datetime, datetime, Turn]]:
    """Who this layer has on call within [start, end): each turn clipped to the range and its restrictions."""
    windows = ([(start, end)] if rotation.restrictions is None
               else covered(rotation.restrictions, rotation.zone, start, end))
    if not windows:
        return []
    begins = [a for a, _ in windows]
    out = []
    for turn in turns(rotation, start, end):
        i = max(bisect_right(begins, turn.start) - 1, 0)
        while i < len(windows) and windows[i][0] < turn.end:
            a, b = max(windows[i][0], turn.start, start), min(windows[i][1], turn.end, end)
            if a < b:
                out.append((a, b, turn))
            i += 1
    return out
