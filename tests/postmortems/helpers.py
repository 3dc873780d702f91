"""Shortcuts for postmortem tests: file incidents through the API and read them back."""

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from postmortems.models import Incident, IncidentDocument, IncidentTag


def file(client: TestClient, title: str, **fields: Any) -> dict[str, Any]:
    """POST /incidents and return the created incident."""
    response = client.post("/incidents", json={"title": title, "author": fields.pop("author", "ana"), **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def move(client: TestClient, incident_id: int, status: str, author: str = "ana", reason: str = "") -> Any:
    return client.post(f"/incidents/{incident_id}/status", json={"status": status, "author": author, "reason": reason})


def search_ids(client: TestClient, **params: Any) -> list[int]:
    response = client.get("/incidents", params=params)
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["hits"]]


def stale_documents(engine: Engine) -> list[int]:
    """Incidents whose search document's copies (opened_at, severity, status, model, tags) differ from the
    incident and its tags; search filters and facets read only the copies."""
    with Session(engine) as session:
        tags: dict[int, list[str]] = {}
        for tag in session.exec(select(IncidentTag).where(IncidentTag.confidence != "rejected")):
            tags.setdefault(tag.incident_id, []).append(tag.tag)
        documents = {d.incident_id: d for d in session.exec(select(IncidentDocument))}
        stale = []
        for incident in session.exec(select(Incident)):
            document = documents.get(incident.id or 0)
            expected = (incident.opened_at, incident.severity, incident.status, incident.model_id,
                        sorted(tags.get(incident.id or 0, [])))
            if document is None or (document.opened_at, document.severity, document.status, document.model_id,
                                    sorted(document.tags)) != expected:
                stale.append(incident.id or 0)
        return stale
