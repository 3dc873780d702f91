"""Building escalation policies and paging incidents through the real API, and reading what was paged."""

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.oncall.escalation_models import IncidentEscalation
from alerts.outbox import OutboxMessage
from postmortems.models import TimelineEntry
from tests.alerts.oncall_helpers import add_rotation, add_schedule

PEOPLE = {"alice": "U0ALICE", "bob": "U0BOB", "carol": None}


def add_people(client: TestClient) -> None:
    """alice and bob have Slack ids, carol has none."""
    for handle, slack_id in PEOPLE.items():
        body = {"handle": handle, "display_name": handle.capitalize(), "slack_user_id": slack_id}
        response = client.post("/users", json={k: v for k, v in body.items() if v is not None})
        assert response.status_code == 201, response.text


def two_hour_schedule(client: TestClient) -> int:
    """'primary' (UTC): alice and bob take turns of two hours from 2026-01-01 00:00."""
    schedule_id = add_schedule(client, "primary", "UTC")
    add_rotation(client, schedule_id, name="l1", participants=["alice", "bob"], unit="hours", shift_length=2,
                 handoff="00:00", start="2026-01-01")
    return schedule_id


def add_policy(client: TestClient, name: str, steps: list[dict[str, Any]], repeat: int = 0,
               default: bool = True) -> dict[str, Any]:
    response = client.post("/escalation-policies", json={"name": name, "steps": steps, "repeat": repeat,
                                                          "default": default})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def step(delay: int, **target: str) -> dict[str, Any]:
    return {"delay_minutes": delay, "targets": [{k: v} for k, v in target.items()]}


def firing(name: str, **labels: str) -> dict[str, Any]:
    """An Alertmanager (webhook v4) notification of one firing alert."""
    alert = {"status": "firing", "labels": {"alertname": name, "severity": "critical", **labels},
             "annotations": {"summary": f"{name} fired"}, "startsAt": "2026-11-28T08:59:30Z",
             "generatorURL": "http://prometheus.test/graph", "fingerprint": name.lower()}
    return {"version": "4", "groupKey": f"{{}}:{{alertname=\"{name}\"}}", "status": "firing",
            "receiver": "watchtower", "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name},
            "commonAnnotations": {"summary": f"{name} fired"}, "alerts": [alert]}


def page_via_alertmanager(client: TestClient, name: str, **labels: str) -> int:
    response = client.post("/alertmanager", json=firing(name, **labels))
    assert response.status_code == 200, response.text
    assert response.json()["page"] == "queued", response.text
    incident_id: int = response.json()["incident_id"]
    return incident_id


def escalation(engine: Engine, incident_id: int) -> IncidentEscalation | None:
    with Session(engine) as session:
        return session.get(IncidentEscalation, incident_id)


def started(engine: Engine, incident_id: int) -> datetime:
    found = escalation(engine, incident_id)
    assert found is not None
    return found.started_at


def dms(engine: Engine, incident_id: int) -> list[str]:
    """The Slack ids DMed about the incident, in order."""
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.incident_id == incident_id)
                            .order_by(col(OutboxMessage.id))).all()
        return [str(m.payload["channel"]) for m in rows
                if str(m.payload.get("channel", "")).startswith("U") and "You are paged" in m.payload["text"]]


def timeline(engine: Engine, incident_id: int, *kinds: str) -> list[tuple[str, str, str]]:
    """(kind, author, text) of the incident's entries of these kinds, in order."""
    with Session(engine) as session:
        rows = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id,
                                                        col(TimelineEntry.kind).in_(kinds))
                            .order_by(col(TimelineEntry.id))).all()
        return [(e.kind, e.author, e.text) for e in rows]
