"""Shortcuts for postmortem tests: file incidents through the API and read them back."""

from typing import Any

from fastapi.testclient import TestClient


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

