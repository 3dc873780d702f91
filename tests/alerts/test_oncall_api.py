"""The on-call API: CRUD, refusals naming the field (never a 5xx), bounded ranges, and .ics feeds that a real
iCalendar parser reads back (both databases)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
from fastapi.testclient import TestClient

from tests.alerts.oncall_helpers import add_override, add_people, add_rotation, add_schedule, shifts

ROTATION = {"name": "primary", "participants": ["ada", "bob"], "unit": "days", "shift_length": 1,
            "handoff": "09:00", "start": "2026-06-01"}
OVERRIDE = {"user": "ada", "start": "2026-06-03T10:00:00+02:00", "end": "2026-06-03T12:00:00+02:00",
            "author": "grace"}


def fields(response: Any) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [e["field"] for e in response.json()["errors"]]


def test_schedules_rotations_and_overrides_are_created_read_edited_and_deleted(client: TestClient) -> None:
    add_people(client, "ada", "bob", "cy")
    schedule_id = add_schedule(client, "ml-platform", "Europe/Berlin")
    assert client.post("/schedules", json={"name": "ml-platform", "time_zone": "UTC"}).status_code == 409
    rotation = add_rotation(client, schedule_id, **ROTATION)
    assert rotation["participants"] == ["ada", "bob"] and rotation["restrictions"] is None
    path = f"/schedules/{schedule_id}/rotations/{rotation['id']}"
    edited = client.patch(path, json={"participants": ["cy", "ada", "bob"], "handoff": "10:30"})
    assert edited.status_code == 200 and edited.json()["participants"] == ["cy", "ada", "bob"]
    assert client.get(path).json()["handoff"] == "10:30"
    renamed = client.patch(f"/schedules/{schedule_id}", json={"description": "Models in production"})
    assert renamed.json()["description"] == "Models in production" and renamed.json()["name"] == "ml-platform"
    listed = client.get("/schedules").json()
    assert [(s["name"], [r["name"] for r in s["rotations"]]) for s in listed] == [("ml-platform", ["primary"])]

    override_id = add_override(client, schedule_id, "bob", datetime(2026, 6, 3, 10, tzinfo=UTC),
                               datetime(2026, 6, 3, 12, tzinfo=UTC), replaces="cy")
    opath = f"/schedules/{schedule_id}/overrides/{override_id}"
    moved = client.patch(opath, json={"end": "2026-06-03T13:00:00Z", "reason": "longer"})
    assert moved.status_code == 200 and moved.json()["end"].startswith("2026-06-03T13:00")
    assert moved.json()["replaces"] == "cy" and moved.json()["author"] == "grace"
    window = {"from": "2026-06-01T00:00:00Z", "to": "2026-06-10T00:00:00Z"}
    assert [o["id"] for o in client.get(f"/schedules/{schedule_id}/overrides", params=window).json()] == [override_id]
    assert client.delete(opath).status_code == 204 and client.get(opath).status_code == 404
    assert client.delete(path).status_code == 204 and client.get(path).status_code == 404
    add_rotation(client, schedule_id, **ROTATION)
    add_override(client, schedule_id, "bob", datetime(2026, 6, 3, 10, tzinfo=UTC), datetime(2026, 6, 3, 12, tzinfo=UTC))
    assert client.delete(f"/schedules/{schedule_id}").status_code == 204  # with its layers and overrides
    assert client.get(f"/schedules/{schedule_id}").status_code == 404
    assert client.get(f"/schedules/{schedule_id}/oncall").status_code == 404


def test_writes_need_the_token(client: TestClient) -> None:
    response = client.post("/schedules", json={"name": "x", "time_zone": "UTC"},
                           headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert client.get("/schedules").json() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "time_zone": "Mars/Olympus"}, "body.time_zone"),
    ({"time_zone": "UTC"}, "body.name"),
    ({"name": " padded ", "time_zone": "UTC"}, "body.name"),
    ({"name": "x", "time_zone": "UTC", "colour": "red"}, "body.colour"),
])
def test_bad_schedules_are_refused_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/schedules", json=body)
    assert response.status_code == 422 and field in fields(response)


@pytest.mark.parametrize(("change", "field"), [
    ({"participants": ["ada", "nobody"]}, "body.participants.1"),
    ({"participants": []}, "body.participants"),
    ({"participants": ["Ada Lovelace"]}, "body.participants.0"),
    ({"unit": "months"}, "body.unit"),
    ({"unit": "hours", "shift_length": 1}, "body.shift_length"),
    ({"unit": "weeks", "shift_length": 53}, "body.shift_length"),
    ({"shift_length": 0}, "body.shift_length"),
    ({"handoff": "25:00"}, "body.handoff"),
    ({"handoff": "9am"}, "body.handoff"),
    ({"start": "2026-02-30"}, "body.start"),
    ({"restrictions": {"weekdays": ["funday"]}}, "body.restrictions.weekdays.0"),
    ({"restrictions": {"weekdays": ["mon", "mon"]}}, "body.restrictions.weekdays"),
    ({"restrictions": {"hours": [{"start": "17:00", "end": "09:00"}]}}, "body.restrictions.hours.0.end"),
    ({"restrictions": {}}, "body.restrictions.hours"),
    ({"priority": -1}, "body.priority"),
    # Found by the fuzzer: lengths and dates whose arithmetic overflowed into a 500.
    ({"unit": "weeks", "shift_length": 316269409398356}, "body.shift_length"),
    ({"start": "6895-11-02"}, "body.start"),
])
def test_bad_rotations_are_refused_naming_the_field(client: TestClient, change: dict[str, Any], field: str) -> None:
    add_people(client, "ada", "bob", "gone")
    assert client.patch("/users/gone", json={"active": False}).status_code == 200
    schedule_id = add_schedule(client, "s", "UTC")
    response = client.post(f"/schedules/{schedule_id}/rotations", json={**ROTATION, **change})
    assert response.status_code == 422 and field in fields(response), response.text
    # The same through PATCH (the merged layer is checked as a whole), and nothing was changed.
    layer = add_rotation(client, schedule_id, **ROTATION)
    response = client.patch(f"/schedules/{schedule_id}/rotations/{layer['id']}", json=change)
    assert response.status_code == 422 and field in fields(response), response.text
    assert client.get(f"/schedules/{schedule_id}/rotations/{layer['id']}").json() == layer


def test_a_layer_name_or_priority_is_taken_once_per_schedule(client: TestClient) -> None:
    add_people(client, "ada", "bob")
    schedule_id = add_schedule(client, "s", "UTC")
    add_rotation(client, schedule_id, **ROTATION)
    for change, field in (({"priority": 5}, "body.name"), ({"name": "secondary"}, "body.priority")):
        response = client.post(f"/schedules/{schedule_id}/rotations", json={**ROTATION, **change})
        assert response.status_code == 409 and fields(response) == [field]
    other = add_schedule(client, "t", "UTC")
    add_rotation(client, other, **ROTATION)  # another schedule may use both


@pytest.mark.parametrize(("change", "field"), [
    ({"end": "2026-06-03T09:00:00+02:00"}, "body.end"),
    ({"end": "2026-06-03T10:00:00+02:00"}, "body.end"),
    ({"end": "2027-06-30T10:00:00+02:00"}, "body.end"),
    ({"start": "2026-06-03T10:00:00"}, "body.start"),  # no offset: ambiguous, refused
    ({"user": "nobody"}, "body.user"),
    ({"user": "gone"}, "body.user"),
    ({"replaces": "nobody"}, "body.replaces"),
    ({"replaces": "ada"}, "body.replaces"),
    ({"author": ""}, "body.author"),
])
def test_bad_overrides_are_refused_naming_the_field(client: TestClient, change: dict[str, Any], field: str) -> None:
    add_people(client, "ada", "bob", "gone")
    assert client.patch("/users/gone", json={"active": False}).status_code == 200
    schedule_id = add_schedule(client, "s", "UTC")
    response = client.post(f"/schedules/{schedule_id}/overrides", json={**OVERRIDE, **change})
    assert response.status_code == 422 and field in fields(response), response.text
    created = client.post(f"/schedules/{schedule_id}/overrides", json=OVERRIDE).json()
    patch = {k: v for k, v in change.items() if k != "author"}
    if patch:
        response = client.patch(f"/schedules/{schedule_id}/overrides/{created['id']}", json=patch)
        assert response.status_code == 422 and field in fields(response), response.text
    assert client.get(f"/schedules/{schedule_id}/overrides/{created['id']}").json() == created


def test_ranges_are_bounded_and_unknowns_are_404(client: TestClient) -> None:
    schedule_id = add_schedule(client, "s", "UTC")
    base = f"/schedules/{schedule_id}/shifts"
    for params in ({"from": "2026-06-02T00:00:00Z", "to": "2026-06-01T00:00:00Z"},
                   {"from": "2026-06-01T00:00:00Z", "to": "2026-09-02T00:00:00Z"}):
        for path in (base, base + ".ics", f"/schedules/{schedule_id}/overrides"):
            response = client.get(path, params=params)
            assert response.status_code == 422 and fields(response) == ["query.to"], (path, response.text)
    assert client.get(base, params={"from": "yesterday"}).status_code == 422
    assert client.get(base, params={"form": "2026-06-01T00:00:00Z"}).status_code == 422  # misspelt
    assert client.get(f"/schedules/{schedule_id}/oncall", params={"at": "soon"}).status_code == 422
    listed = client.get(base, params={"from": "2026-06-01T00:00:00Z", "to": "2026-09-01T00:00:00Z"})
    assert listed.status_code == 200 and listed.json()["shifts"] == []
    assert [(g["start"], g["end"]) for g in listed.json()["gaps"]] == [("2026-06-01T00:00:00Z", "2026-09-01T00:00:00Z")]
    for path in ("/schedules/999", "/schedules/999/shifts", "/schedules/999/shifts.ics", "/schedules/999/oncall",
                 "/users/nobody/shifts.ics", f"/schedules/{schedule_id}/rotations/999",
                 f"/schedules/{schedule_id}/overrides/999"):
        assert client.get(path).status_code == 404, path


def _events(text: str) -> list[Any]:
    calendar = icalendar.Calendar.from_ical(text)
    assert calendar["VERSION"] == "2.0" and calendar["PRODID"]
    return list(calendar.walk("VEVENT"))


def test_ics_feeds_parse_and_match_the_shifts(client: TestClient) -> None:
    add_people(client, "ada", "bob", "cy")
    name = "Plateforme ML — équipe de garde, Zürich; nuits, week-ends et jours fériés inclus"
    berlin = add_schedule(client, name, "Europe/Berlin")
    add_rotation(client, berlin, name="primary", participants=["ada", "bob"], unit="days", shift_length=1,
                 handoff="09:00", start="2026-03-27")
    other = add_schedule(client, "search", "America/New_York")
    add_rotation(client, other, name="weekly", participants=["cy", "ada"], unit="weeks", shift_length=1,
                 handoff="10:00", start="2026-03-02")
    add_override(client, berlin, "cy", datetime(2026, 3, 30, 12, tzinfo=UTC), datetime(2026, 3, 30, 14, tzinfo=UTC))
    window = {"from": "2026-03-27T00:00:00Z", "to": "2026-04-03T00:00:00Z"}
    response = client.get(f"/schedules/{berlin}/shifts.ics", params=window)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    raw = response.content
    assert all(len(line) <= 75 for line in raw.split(b"\r\n")), "RFC 5545 folds lines at 75 octets"
    assert raw.endswith(b"END:VCALENDAR\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    events = _events(response.text)
    listed = shifts(client, berlin, datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC))["shifts"]
    assert [(e.decoded("DTSTART"), e.decoded("DTEND")) for e in events] == [
        (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])) for s in listed]
    assert all(e.decoded("DTSTART").tzinfo is not None and e.decoded("DTSTART").utcoffset() == timedelta(0)
               for e in events)
    assert len({str(e["UID"]) for e in events}) == len(events) and all(e.get("DTSTAMP") for e in events)
    assert [str(e["SUMMARY"]) for e in events][:2] == [f"On call: ada ({name})", f"On call: bob ({name})"]
    assert any("override" in str(e["DESCRIPTION"]) and "cy" in str(e["SUMMARY"]) for e in events)
    # The DST change on 29 March: the handoff stays at 09:00 Berlin time, 07:00 UTC after it.
    assert [e.decoded("DTSTART") for e in events[:4]] == [datetime(2026, 3, d, h, tzinfo=UTC)
                                                          for d, h in ((27, 8), (28, 8), (29, 7), (30, 7))]

    feed = client.get("/users/ada/shifts.ics", params=window)
    assert feed.status_code == 200
    mine = _events(feed.text)
    assert {str(e["SUMMARY"]) for e in mine} == {f"On call: {name}", "On call: search"}
    starts = [e.decoded("DTSTART") for e in mine]
    assert starts == sorted(starts)
    expected = [s for sid in (berlin, other) for s in shifts(
        client, sid, datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 4, 3, tzinfo=UTC))["shifts"]
        if s["handle"] == "ada"]
    assert len(mine) == len(expected) and len(mine) > 2
    # bob's first turn starts on the 28th at 09:00: before it his feed is empty, and still a calendar.
    assert _events(client.get("/users/bob/shifts.ics", params={**window, "to": "2026-03-28T00:00:00Z"}).text) == []
