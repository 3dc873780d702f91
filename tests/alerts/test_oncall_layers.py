"""Layers, restrictions and overrides resolved into who is on call and why (API and the Python interface,
both databases). The schedule: a 24x7 weekly layer (ada, bob) under a business-hours daily layer (cy, dan,
Monday to Friday 09:00-17:00), in Berlin; the week of Monday 1 June 2026."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.oncall.schedules import OnCall, oncall_at, schedule_by_name
from tests.alerts.oncall_helpers import add_override, add_people, add_rotation, add_schedule, oncall, shifts, wall, who
from watchtower.errors import NotFound
from watchtower.gauges import read_operational

BERLIN = ZoneInfo("Europe/Berlin")
WED = datetime(2026, 6, 3, tzinfo=BERLIN)
THU = datetime(2026, 6, 4, tzinfo=BERLIN)
SAT = datetime(2026, 6, 6, tzinfo=BERLIN)


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute)


def layered(client: TestClient) -> int:
    add_people(client, "ada", "bob", "cy", "dan", "eve", "frank")
    schedule_id = add_schedule(client, "ml-platform", "Europe/Berlin")
    add_rotation(client, schedule_id, name="24x7", priority=0, participants=["ada", "bob"], unit="weeks",
                 shift_length=1, handoff="09:00", start="2026-06-01")
    add_rotation(client, schedule_id, name="business-hours", priority=10, participants=["cy", "dan"], unit="days",
                 shift_length=1, handoff="09:00", start="2026-06-01",
                 restrictions={"weekdays": ["mon", "tue", "wed", "thu", "fri"],
                               "hours": [{"start": "09:00", "end": "17:00"}]})
    return schedule_id


def summary(client: TestClient, schedule_id: int, start: datetime, end: datetime) -> list[tuple[str, str, str, str]]:
    """(from, to, handle, source) of each final shift, local times."""
    return [(wall(s["start"], BERLIN).strftime("%H:%M"), wall(s["end"], BERLIN).strftime("%H:%M"), s["handle"],
             s["source"]) for s in shifts(client, schedule_id, start, end)["shifts"]]


def test_a_business_hours_layer_wins_over_the_24x7_layer_only_in_its_hours(client: TestClient) -> None:
    schedule_id = layered(client)
    # Turns advance every day, weekends included (restrictions only mask them): Mon cy, Tue dan, Wed cy...
    assert summary(client, schedule_id, WED, THU) == [
        ("00:00", "09:00", "ada", "layer 24x7"), ("09:00", "17:00", "cy", "layer business-hours"),
        ("17:00", "00:00", "ada", "layer 24x7")]
    assert who(client, schedule_id, at(THU, 10)) == "dan"
    assert who(client, schedule_id, at(SAT, 10)) == "ada"  # no business hours at the weekend
    assert who(client, schedule_id, at(SAT + timedelta(days=2), 8, 59)) == "ada"
    assert who(client, schedule_id, at(SAT + timedelta(days=2), 9)) == "dan"  # Mon 8 June: day 7, dan
    (now,) = oncall(client, schedule_id, at(WED, 17, 30))
    # Ada's weekly turn is cut by the business hours: the shift she is on now runs from 17:00 to 09:00.
    assert now["source"] == "layer 24x7" and now["layer"] == "24x7" and now["display_name"] == "Ada"
    assert (wall(now["shift_start"], BERLIN), wall(now["shift_end"], BERLIN)) == (
        at(WED, 17).replace(tzinfo=None), at(THU, 9).replace(tzinfo=None))


def test_an_override_inside_a_layered_schedule(client: TestClient, db: Engine) -> None:
    schedule_id = layered(client)
    # eve stands in for cy over lunch; an override for cy while cy is not on call changes nothing.
    lunch = add_override(client, schedule_id, "eve", at(WED, 12), at(WED, 14), replaces="cy")
    add_override(client, schedule_id, "eve", at(WED, 20), at(WED, 22), replaces="cy")
    assert summary(client, schedule_id, WED, THU) == [
        ("00:00", "09:00", "ada", "layer 24x7"), ("09:00", "12:00", "cy", "layer business-hours"),
        ("12:00", "14:00", "eve", f"override #{lunch}"), ("14:00", "17:00", "cy", "layer business-hours"),
        ("17:00", "00:00", "ada", "layer 24x7")]
    (now,) = oncall(client, schedule_id, at(WED, 12, 30))
    assert (now["handle"], now["override_id"], now["replaces"]) == ("eve", lunch, "cy")
    # frank covers for everybody across the 09:00 handoff of both layers; then, overriding the override,
    # ada takes half an hour of it.
    cover = add_override(client, schedule_id, "frank", at(THU, 8), at(THU, 10))
    swap = add_override(client, schedule_id, "ada", at(THU, 9), at(THU, 9, 30), replaces="frank")
    assert summary(client, schedule_id, at(THU, 7), at(THU, 11)) == [
        ("07:00", "08:00", "ada", "layer 24x7"), ("08:00", "09:00", "frank", f"override #{cover}"),
        ("09:00", "09:30", "ada", f"override #{swap}"), ("09:30", "10:00", "frank", f"override #{cover}"),
        ("10:00", "11:00", "dan", "layer business-hours")]
    listed = shifts(client, schedule_id, at(THU, 7), at(THU, 11))["shifts"]
    assert [s["replaces"] for s in listed] == [None, None, "frank", None, None]
    # The Python interface escalation uses: the same answers, with the whole final shift.
    with Session(db) as session:
        schedule = schedule_by_name(session, "ml-platform")
        assert schedule.id == schedule_id
        assert oncall_at(session, schedule_id, at(THU, 8, 30)) == [
            OnCall("frank", f"override #{cover}", at(THU, 8), at(THU, 9))]
        assert oncall_at(session, schedule_id, at(WED, 13)) == [
            OnCall("eve", f"override #{lunch}", at(WED, 12), at(WED, 14))]
        assert oncall_at(session, schedule_id, at(WED, 21))[0].handle == "ada"
        with pytest.raises(NotFound):
            schedule_by_name(session, "nope")
    # Deleting an override gives the time back to the layers.
    assert client.delete(f"/schedules/{schedule_id}/overrides/{cover}").status_code == 204
    assert who(client, schedule_id, at(THU, 8, 30)) == "ada"
    assert who(client, schedule_id, at(THU, 9, 15)) == "dan"  # swap replaced frank, who is gone


def test_gaps_are_listed_and_show_in_the_gauge(client: TestClient, db: Engine) -> None:
    add_people(client, "cy", "dan")
    office = add_schedule(client, "office-hours", "Europe/Berlin")
    add_schedule(client, "empty", "UTC")
    add_rotation(client, office, name="business-hours", participants=["cy", "dan"], unit="days", shift_length=1,
                 handoff="09:00", start="2026-06-01",
                 restrictions={"weekdays": ["mon", "tue", "wed", "thu", "fri"],
                               "hours": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]})
    listed = shifts(client, office, WED, THU)
    assert [(s["handle"], wall(s["start"], BERLIN).hour, wall(s["end"], BERLIN).hour) for s in listed["shifts"]] == [
        ("cy", 9, 12), ("cy", 13, 17)]
    assert [(wall(g["start"], BERLIN).hour, wall(g["end"], BERLIN).hour) for g in listed["gaps"]] == [
        (0, 9), (12, 13), (17, 0)]
    assert oncall(client, office, at(WED, 12, 30)) == []

    def gauge(now: datetime) -> dict[str, float]:
        samples = read_operational(db, now)["watchtower_schedule_oncall"]
        return {labels["schedule"]: value for labels, value in samples}

    assert gauge(at(WED, 10)) == {"office-hours": 1.0, "empty": 0.0}
    assert gauge(at(WED, 12, 30)) == {"office-hours": 0.0, "empty": 0.0}
    assert gauge(at(SAT, 10)) == {"office-hours": 0.0, "empty": 0.0}
    # And on /metrics (read now): the empty schedule is a gap whenever it is scraped.
    text = client.get("/metrics").text
    assert 'watchtower_schedule_oncall{schedule="empty"} 0.0' in text
    assert 'watchtower_schedule_oncall{schedule="office-hours"}' in text


def test_a_deactivated_person_leaves_the_turn_order(client: TestClient) -> None:
    add_people(client, "ada", "bob", "cy")
    schedule_id = add_schedule(client, "small", "UTC")
    add_rotation(client, schedule_id, name="daily", participants=["ada", "bob", "cy"], unit="days",
                 shift_length=1, handoff="00:00", start="2026-06-01")
    utc = ZoneInfo("UTC")
    assert [who(client, schedule_id, datetime(2026, 6, d, 12, tzinfo=utc)) for d in (1, 2, 3)] == ["ada", "bob", "cy"]
    assert client.patch("/users/bob", json={"active": False}).status_code == 200
    assert [who(client, schedule_id, datetime(2026, 6, d, 12, tzinfo=utc)) for d in (1, 2, 3)] == ["ada", "cy", "ada"]
    # The layer keeps bob (it can still be edited), and he is back in his turns when reactivated.
    layer = client.get(f"/schedules/{schedule_id}").json()["rotations"][0]
    edited = client.patch(f"/schedules/{schedule_id}/rotations/{layer['id']}", json={"name": "daily-utc"})
    assert edited.status_code == 200 and edited.json()["participants"] == ["ada", "bob", "cy"]
    assert client.patch("/users/bob", json={"active": True}).status_code == 200
    assert [who(client, schedule_id, datetime(2026, 6, d, 12, tzinfo=utc)) for d in (1, 2, 3)] == ["ada", "bob", "cy"]
