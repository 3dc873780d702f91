"""Incident input the fuzzer once turned into 500s: each is a 422 naming the field, and nothing is written."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.postmortems.helpers import file
from tests.watchtower.signin_helpers import add_person, page_csrf, signed_in

BIG = 10**400  # 401 digits: Python's json parses it; no column can hold it


def raw(client: TestClient, method: str, url: str, text: str) -> Any:
    """Send a JSON body as written (NaN, Infinity and huge numbers are what some clients really send)."""
    return client.request(method, url, content=text.encode(), headers={"Content-Type": "application/json"})


def assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


def assert_intact(client: TestClient, incident: dict[str, Any]) -> None:
    """The incident reads back as it was, on every surface that once broke."""
    read = client.get(f"/incidents/{incident['id']}")
    assert read.status_code == 200, read.text
    for key in ("title", "summary", "severity", "impact", "impact_numbers", "affected_models", "affected_pipelines"):
        assert read.json()[key] == incident[key], key
    assert len(read.json()["timeline"]) == len(incident["timeline"])  # no "update" entry was written
    for url in (f"/incidents/{incident['id']}/writeup", f"/incidents/{incident['id']}/export",
                f"/incidents/{incident['id']}/export?format=markdown", "/incidents?q=drift"):
        assert client.get(url).status_code == 200, url
    assert client.get(f"/postmortems/incidents/{incident['id']}").status_code == 200
    assert client.get("/postmortems?q=drift").status_code == 200


@pytest.mark.parametrize("field", ["impact_numbers", "title", "summary", "severity", "impact", "models", "pipelines"])
def test_null_for_a_non_nullable_field_in_a_patch_is_refused(client: TestClient, field: str) -> None:
    incident = file(client, "Churn drifted", summary="drift", impact="some", impact_numbers={"users": 3.0})
    response = client.patch(f"/incidents/{incident['id']}", json={"author": "ana", field: None})
    assert_refused(response, f"body.{field}")
    assert "must not be null" in response.text
    assert_intact(client, incident)


def test_patch_may_still_clear_the_owner_and_leave_fields_out(client: TestClient) -> None:
    incident = file(client, "Churn drifted", owner="ana", impact_numbers={"users": 3.0})
    response = client.patch(f"/incidents/{incident['id']}", json={"author": "ana", "owner": None})
    assert response.status_code == 200, response.text
    assert response.json()["owner"] is None
    assert response.json()["impact_numbers"]["users"] == 3.0


def test_null_action_item_status_is_refused(client: TestClient) -> None:
    incident = file(client, "Churn drifted")
    item = client.post(f"/incidents/{incident['id']}/action-items", json={"author": "ana", "title": "Retrain"})
    url = f"/incidents/{incident['id']}/action-items/{item.json()['id']}"
    assert_refused(client.patch(url, json={"author": "ana", "status": None}), "body.status")
    assert client.patch(url, json={"author": "ana", "due": None}).json()["status"] == "open"


@pytest.mark.parametrize(("body", "field"), [
    ({"title": "a\x00b"}, "body.title"),
    ({"title": "t", "summary": "a\x00b"}, "body.summary"),
    ({"title": "t", "author": "a\x00"}, "body.author"),
    ({"title": "t", "models": ["m\x00"]}, "body.models.0"),
    ({"title": "t", "impact_numbers": {"us\x00ers": 1}}, "body.impact_numbers.us\x00ers.[key]"),
])
def test_nul_characters_are_refused(client: TestClient, body: dict[str, Any], field: str) -> None:
    assert_refused(client.post("/incidents", json={"author": "ana"} | body), field)
    assert client.get("/incidents").json()["total"] == 0


def test_nul_in_notes_writeups_queries_and_tags_is_refused(client: TestClient) -> None:
    incident = file(client, "Churn drifted")
    base = f"/incidents/{incident['id']}"
    assert_refused(client.post(f"{base}/notes", json={"author": "ana", "text": "a\x00b"}), "body.text")
    assert_refused(client.put(f"{base}/writeup", json={"author": "ana", "markdown": "\x00", "base_revision": 0}),
                   "body.markdown")
    assert_refused(client.get("/incidents", params={"q": "drift\x00"}), "query.q")
    assert_refused(client.put(f"{base}/tags/a%00b", json={"author": "ana"}), "path.tag")


@pytest.mark.parametrize("incident_id", [2**31, 2**63, 2**64 + 1, 0, -1])
def test_ids_beyond_an_integer_column_are_refused(client: TestClient, incident_id: int) -> None:
    assert_refused(client.get(f"/incidents/{incident_id}"), "path.incident_id")
    assert_refused(client.patch(f"/incidents/{incident_id}", json={"author": "ana"}), "path.incident_id")
    incident = file(client, "Churn drifted")
    assert_refused(client.patch(f"/incidents/{incident['id']}/action-items/{incident_id}", json={"author": "ana"}),
                   "path.item_id")
    assert_refused(client.post(f"/incidents/{incident['id']}/similar/{incident_id}/dismiss", json={"author": "ana"}),
                   "path.other_id")


def test_numbers_beyond_their_columns_are_refused(client: TestClient) -> None:
    incident = file(client, "Churn drifted")
    assert_refused(client.get("/incidents", params={"offset": 2**63}), "query.offset")
    assert_refused(client.put(f"/incidents/{incident['id']}/writeup",
                              json={"author": "ana", "markdown": "x", "base_revision": 2**40}), "body.base_revision")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00",
                                  "9999-12-31T23:59:59", "1969-12-31T23:59:59Z", "2200-01-01T00:00:00Z"])
def test_datetimes_outside_the_documented_range_are_refused(client: TestClient, when: str) -> None:
    assert_refused(client.post("/incidents", json={"title": "t", "author": "ana", "opened_at": when}),
                   "body.opened_at")
    # A search bound stores nothing: outside the range it is moved to the range's nearer end, not refused.
    assert client.get("/incidents", params={"opened_from": when, "opened_to": when}).status_code == 200
    assert_refused(client.post("/incidents/import", json={"incidents": [
        {"title": "t", "author": "ana", "resolved_at": when}]}), "body.incidents.0.resolved_at")
    incident = file(client, "Churn drifted")
    assert_refused(client.post(f"/incidents/{incident['id']}/action-items",
                               json={"author": "ana", "title": "x", "due": when[:10]}), "body.due")


def test_datetimes_at_the_edges_of_the_range_are_stored(client: TestClient) -> None:
    incident = file(client, "Old", opened_at="1970-01-01T00:00:00Z", impact_started_at="2199-12-31T23:00:00-00:30")
    assert incident["opened_at"].startswith("1970-01-01T00:00:00")
    assert client.get(f"/incidents/{incident['id']}").status_code == 200


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", str(BIG)])
def test_impact_numbers_must_be_finite(client: TestClient, number: str) -> None:
    body = f'{{"title": "t", "author": "ana", "impact_numbers": {{"users": {number}}}}}'
    assert_refused(raw(client, "POST", "/incidents", body), "body.impact_numbers.users")
    incident = file(client, "Churn drifted", summary="drift", impact_numbers={"users": 1.0})
    patch = f'{{"author": "ana", "impact_numbers": {{"users": {number}}}}}'
    assert_refused(raw(client, "PATCH", f"/incidents/{incident['id']}", patch), "body.impact_numbers.users")
    assert_intact(client, incident)


def test_strings_longer_than_their_columns_are_refused(client: TestClient) -> None:
    assert_refused(client.post("/incidents", json={"title": "t", "author": "ana", "models": ["m" * 201]}),
                   "body.models.0")
    incident = file(client, "Churn drifted")
    assert_refused(client.post(f"/incidents/{incident['id']}/action-items",
                               json={"author": "ana", "title": "x", "owner": "o" * 201}), "body.owner")
    big_taxonomy = {"namespace": "team", "title": "Team", "nodes": [{"key": "a", "label": "A", "description": "\x00"}]}
    assert_refused(client.post("/taxonomies", content=json.dumps(big_taxonomy)), "body.nodes.0.description")


def test_the_pages_bound_their_parameters_too(client: TestClient, db: Engine) -> None:
    incident = file(client, "Churn drifted")
    for url in (f"/postmortems/incidents/{2**63}", "/postmortems?q=drift%00", f"/postmortems?page={2**40}"):
        response = client.get(url)
        assert response.status_code == 422, url
        assert response.headers["content-type"].startswith("text/html")
    add_person(db, "ana")
    browser = signed_in(client.app, "ana")  # type: ignore[arg-type]
    note = browser.post(f"/postmortems/incidents/{incident['id']}/notes",
                        data={"text": "a\x00b", "csrf": page_csrf(browser)})
    assert note.status_code == 422
    assert client.get("/postmortems?opened_from=0001-01-01T00:00:00%2B01:00&opened_to=9999-12-31").status_code == 200
    assert client.get(f"/incidents/{incident['id']}").json()["timeline"] == incident["timeline"]
