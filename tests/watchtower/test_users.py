"""People: one user table (on-call, Slack and roles name the same people); validated, never half-written."""

from fastapi.testclient import TestClient

ADA = {"handle": "ada", "display_name": "Ada Lovelace", "email": "ada@example.com", "slack_user_id": "U024BE7LH",
       "time_zone": "Europe/London"}


def test_people_are_added_listed_edited_and_deactivated(client: TestClient) -> None:
    created = client.post("/users", json=ADA)
    assert created.status_code == 201 and created.json()["active"] is True
    assert client.post("/users", json={**ADA, "email": "x@example.com", "slack_user_id": None}).status_code == 409
    assert client.post("/users", json={**ADA, "handle": "ada2", "email": None}).status_code == 409  # Slack id taken
    edited = client.patch("/users/ada", json={"time_zone": "America/New_York", "active": False})
    assert edited.status_code == 200 and edited.json()["time_zone"] == "America/New_York"
    assert client.get("/users/ada").json()["active"] is False
    assert [u["handle"] for u in client.get("/users").json()] == ["ada"]
    assert client.get("/users/nobody").status_code == 404
    assert client.post("/users", json=ADA, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_bad_people_are_refused_naming_the_field(client: TestClient) -> None:
    for body, field in [({**ADA, "time_zone": "Mars/Olympus"}, "body.time_zone"),
                        ({**ADA, "email": "not-an-address"}, "body.email"),
                        ({**ADA, "slack_user_id": "ada"}, "body.slack_user_id"),
                        ({**ADA, "handle": "Ada Lovelace"}, "body.handle")]:
        response = client.post("/users", json=body)
        assert response.status_code == 422 and field in [e["field"] for e in response.json()["errors"]], body
    assert client.post("/users", json=ADA).status_code == 201
    nulled = client.patch("/users/ada", json={"display_name": None})
    assert nulled.status_code == 422 and "cannot be null" in nulled.text
    assert client.get("/users/ada").json()["display_name"] == "Ada Lovelace"
