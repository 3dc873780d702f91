"""Rotations hand off in wall-clock time of the schedule's zone: daylight saving never moves a handoff or skips
a person (checked through the API on both databases, against dates worked out here by hand)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.alerts.oncall_helpers import add_people, add_rotation, add_schedule, oncall, shifts, wall, who

TEAM = ["ada", "bob", "cy"]
# 2026's changes: Berlin springs forward on 29 March and falls back on 25 October; New York on 8 March and
# 1 November. Each window holds one change, with three weeks either side (the API lists at most 92 days).
CHANGES = {"Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
           "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)]}


@pytest.mark.parametrize("zone_name", sorted(CHANGES))
def test_weekly_rotation_hands_off_at_the_same_wall_clock_time_across_both_changes(
        client: TestClient, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    add_people(client, *TEAM)
    schedule_id = add_schedule(client, f"ml-{zone_name}", zone_name)
    # Sunday handoffs: the very day the clocks change, six hours after they did.
    first = date(2026, 1, 4)
    add_rotation(client, schedule_id, name="primary", participants=TEAM, unit="weeks", shift_length=1,
                 handoff="09:00", start=first.isoformat())
    for change in CHANGES[zone_name]:
        start = datetime.combine(change - timedelta(days=21), datetime.min.time(), zone)
        listed = shifts(client, schedule_id, start, start + timedelta(days=42))["shifts"]
        inner = listed[1:-1]  # the first and last are clipped to the range
        assert len(inner) == 5, listed
        for shift in inner:
            begins, ends = wall(shift["start"], zone), wall(shift["end"], zone)
            assert (begins.strftime("%a %H:%M"), ends.strftime("%a %H:%M")) == ("Sun 09:00", "Sun 09:00"), shift
            weeks = (begins.date() - first).days // 7
            assert shift["handle"] == TEAM[weeks % 3], (shift, weeks)  # nobody skipped, nobody twice
            assert shift["source"] == "layer primary"
        # The shift that spans the change really is an hour shorter (spring) or longer (autumn).
        spanning = next(s for s in inner if wall(s["start"], zone).date() == change - timedelta(days=7))
        real = datetime.fromisoformat(spanning["end"]) - datetime.fromisoformat(spanning["start"])
        assert real == timedelta(hours=167 if change.month == 3 else 169)
        on_the_day = datetime.combine(change, datetime.min.time())
        before, after = on_the_day.replace(hour=8, minute=59), on_the_day.replace(hour=9)
        outgoing = who(client, schedule_id, before.replace(tzinfo=zone))
        incoming = who(client, schedule_id, after.replace(tzinfo=zone))
        assert TEAM.index(incoming or "") == (TEAM.index(outgoing or "") + 1) % 3
        (now,) = oncall(client, schedule_id, after.replace(tzinfo=zone))
        assert wall(now["shift_start"], zone) == after and wall(now["shift_end"], zone) == after + timedelta(days=7)


@pytest.mark.parametrize(("zone_name", "spring"), [("Europe/Berlin", date(2026, 3, 29)),
                                                   ("America/New_York", date(2026, 3, 8))])
def test_a_handoff_in_the_skipped_hour_happens_when_the_clocks_jump(
        client: TestClient, zone_name: str, spring: date) -> None:
    """02:30 does not exist on the spring-forward night (02:00 jumps to 03:00): that night's handoff happens at
    the jump, 03:00 local; the outgoing shift is half an hour shorter, the next person is not skipped, and the
    following handoff is at 02:30 again."""
    zone = ZoneInfo(zone_name)
    add_people(client, *TEAM)
    schedule_id = add_schedule(client, "nights", zone_name)
    first = spring - timedelta(days=3)
    add_rotation(client, schedule_id, name="daily", participants=TEAM, unit="days", shift_length=1,
                 handoff="02:30", start=first.isoformat())
    listed = shifts(client, schedule_id, datetime.combine(first, datetime.min.time(), zone),
                    datetime.combine(spring + timedelta(days=3), datetime.min.time(), zone))["shifts"]
    starts = [(wall(s["start"], zone).strftime("%d %H:%M"), s["handle"]) for s in listed]
    day = spring.day
    assert starts == [(f"{day - 3:02d} 02:30", "ada"), (f"{day - 2:02d} 02:30", "bob"), (f"{day - 1:02d} 02:30", "cy"),
                      (f"{day:02d} 03:00", "ada"), (f"{day + 1:02d} 02:30", "bob"), (f"{day + 2:02d} 02:30", "cy")]
    jump = datetime.fromisoformat(listed[3]["start"])
    # The jump instant: one second before it the outgoing person is still on call.
    assert who(client, schedule_id, jump - timedelta(seconds=1)) == "cy"
    assert who(client, schedule_id, jump) == "ada"
    assert datetime.fromisoformat(listed[2]["end"]) - datetime.fromisoformat(listed[2]["start"]) == timedelta(
        hours=23, minutes=30)


def test_a_handoff_in_the_repeated_hour_happens_at_its_first_occurrence(client: TestClient) -> None:
    """01:30 happens twice in New York on 1 November 2026 (EDT, then EST): the handoff is at the first, and
    the second 01:30 belongs to the same shift."""
    zone = ZoneInfo("America/New_York")
    add_people(client, *TEAM)
    schedule_id = add_schedule(client, "fall", "America/New_York")
    add_rotation(client, schedule_id, name="daily", participants=TEAM, unit="days", shift_length=1,
                 handoff="01:30", start="2026-10-30")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=zone)  # fold=0: EDT, 05:30 UTC
    second = first.replace(fold=1)  # EST, 06:30 UTC
    assert (second - first) == timedelta(0) and second.timestamp() - first.timestamp() == 3600
    assert who(client, schedule_id, first - timedelta(minutes=1)) == "bob"
    assert who(client, schedule_id, first) == "cy"
    (now,) = oncall(client, schedule_id, datetime.fromtimestamp(second.timestamp(), zone))
    assert now["handle"] == "cy" and datetime.fromisoformat(now["shift_start"]).timestamp() == first.timestamp()
    assert datetime.fromisoformat(now["shift_end"]) - datetime.fromisoformat(now["shift_start"]) == timedelta(hours=25)


def test_hour_shifts_keep_their_wall_clock_slots(client: TestClient) -> None:
    """Eight-hour shifts at 07:00, 15:00 and 23:00 Berlin time stay there after the spring change (the night
    shift over the change lasts seven hours)."""
    zone = ZoneInfo("Europe/Berlin")
    add_people(client, *TEAM)
    schedule_id = add_schedule(client, "follow-the-sun", "Europe/Berlin")
    add_rotation(client, schedule_id, name="eights", participants=TEAM, unit="hours", shift_length=8,
                 handoff="07:00", start="2026-03-27")
    listed = shifts(client, schedule_id, datetime(2026, 3, 28, 7, tzinfo=zone),
                    datetime(2026, 3, 30, 7, tzinfo=zone))["shifts"]
    assert [wall(s["start"], zone).strftime("%d %H:%M") for s in listed] == [
        "28 07:00", "28 15:00", "28 23:00", "29 07:00", "29 15:00", "29 23:00"]
    assert [s["handle"] for s in listed] == ["ada", "bob", "cy", "ada", "bob", "cy"]  # 3 turns before the 28th
    night = listed[2]
    assert datetime.fromisoformat(night["end"]) - datetime.fromisoformat(night["start"]) == timedelta(hours=7)


def test_nobody_is_on_call_before_a_rotation_starts(client: TestClient) -> None:
    zone = ZoneInfo("UTC")
    add_people(client, *TEAM)
    schedule_id = add_schedule(client, "later", "UTC")
    add_rotation(client, schedule_id, name="primary", participants=TEAM, unit="days", shift_length=2,
                 handoff="12:00", start="2026-05-01")
    assert who(client, schedule_id, datetime(2026, 5, 1, 11, 59, tzinfo=zone)) is None
    assert who(client, schedule_id, datetime(2026, 5, 1, 12, tzinfo=zone)) == "ada"
    assert who(client, schedule_id, datetime(2026, 5, 3, 12, tzinfo=zone)) == "bob"
    listed = shifts(client, schedule_id, datetime(2026, 4, 30, tzinfo=zone), datetime(2026, 5, 2, tzinfo=zone))
    assert [(g["start"][:16], g["end"][:16]) for g in listed["gaps"]] == [("2026-04-30T00:00", "2026-05-01T12:00")]
