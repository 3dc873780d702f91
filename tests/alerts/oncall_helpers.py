"""Building on-call schedules through the real API, and reading times back in a schedule's zone."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient


def add_people(client: TestClient, *handles: str) -> None:
    """Users with these handles (display name: the handle capitalised)."""
    for handle in handles:
        response = client.post("/users", json={"handle": handle, "display_name": handle.capitalize()})
        assert response.status_code == 201, response.text


def add_schedule(client: TestClient, name: str, zone: str) -> int:
    response = client.post("/schedules", json={"name": name, "time_zone": zone})
    assert response.status_code == 201, response.text
    schedule_id: int = response.json()["id"]
    return schedule_id


def add_rotation(client: TestClient, schedule_id: int, **fields: Any) -> dict[str, Any]:
    response = client.post(f"/schedules/{schedule_id}/rotations", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def add_override(client: TestClient, schedule_id: int, user: str, start: datetime, end: datetime,
                 replaces: str | None = None) -> int:
    body = {"user": user, "replaces": replaces, "start": start.isoformat(), "end": end.isoformat(),
            "author": "grace", "reason": "swap"}
    response = client.post(f"/schedules/{schedule_id}/overrides", json=body)
    assert response.status_code == 201, response.text
    override_id: int = response.json()["id"]
    return override_id


def shifts(client: TestClient, schedule_id: int, start: datetime, end: datetime) -> dict[str, Any]:
    response = client.get(f"/schedules/{schedule_id}/shifts",
                          params={"from": start.isoformat(), "to": end.isoformat()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def oncall(client: TestClient, schedule_id: int, at: datetime) -> list[dict[str, Any]]:
    response = client.get(f"/schedules/{schedule_id}/oncall", params={"at": at.isoformat()})
    assert response.status_code == 200, response.text
    answer: list[dict[str, Any]] = response.json()["oncall"]
    return answer


def wall(value: str, zone: ZoneInfo) -> datetime:
    """An API timestamp as the wall-clock time it shows in `zone` (naive)."""
    return datetime.fromisoformat(value).astimezone(zone).replace(tzinfo=None)


def who(client: TestClient, schedule_id: int, at: datetime) -> str | None:
    """The handle on call at `at`, or None in a gap."""
    answer = oncall(client, schedule_id, at)
    return answer[0]["handle"] if answer else None
