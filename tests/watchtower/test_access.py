"""Reads need a role unless opened, /metrics' own switches, sign-in redirects, redacted webhook URLs, the audit
log and who the timeline names."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from tests import factories
from tests.conftest import TOKEN
from tests.watchtower.auth_helpers import add_person, bearer
from watchtower.app import create_app
from watchtower.auth.roles import Role
from watchtower.settings import Settings


@pytest.fixture
def anonymous(settings: Settings, db: Engine) -> Iterator[Any]:
    """Build an app with some settings changed; call it without credentials."""
    def build(**changes: Any) -> TestClient:
        return TestClient(create_app(settings.model_copy(update=changes), engine=db), follow_redirects=False)
    yield build


def test_reads_need_a_viewer_unless_anonymous_read_opens_them(anonymous: Any, client: TestClient) -> None:
    closed = anonymous()
    refused = closed.get("/incidents")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.headers["content-type"] == "application/problem+json"
    assert closed.get("/healthz").status_code == 200 and closed.get("/readyz").status_code == 200
    assert closed.get("/openapi.json").status_code == 401
    opened = anonymous(anonymous_read=True)
    assert opened.get("/incidents").status_code == 200 and opened.get("/openapi.json").status_code == 200
    assert opened.post("/incidents", json={}).status_code == 401  # writes stay closed
    assert opened.get("/audit").status_code == 401  # the audit log is an admin's
    assert opened.get("/metrics").status_code == 401  # /metrics has its own switches
    assert opened.get("/incidents", headers=bearer("wt_wrong")).status_code == 401  # a bad token is still bad


def test_metrics_public_by_scrape_token_or_for_viewers(anonymous: Any, db: Engine) -> None:
    assert anonymous().get("/metrics").status_code == 401
    assert anonymous(metrics_public=True).get("/metrics").status_code == 200
    scrape = anonymous(metrics_token=SecretStr("scrape-secret"))
    assert scrape.get("/metrics", headers=bearer("scrape-secret")).status_code == 200
    assert scrape.get("/metrics", headers=bearer("nope")).status_code == 401
    assert scrape.get("/models", headers=bearer("scrape-secret")).status_code == 401  # it opens /metrics only
    _, viewer = add_person(db, "vic", Role.viewer)
    assert anonymous().get("/metrics", headers=bearer(viewer)).status_code == 200


def test_pages_send_people_to_the_sign_in_and_back_to_a_path_of_ours(anonymous: Any) -> None:
    closed = anonymous()
    page = closed.get("/postmortems/analytics", params={"window": "30"})
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/login?next=/postmortems/analytics%3Fwindow%3D30"
    assert closed.get("/auth/login").status_code == 200
    root = closed.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/auth/login?next=/"
    api = closed.get("/postmortems-not-a-page/x")
    assert api.status_code == 401  # no route: refused like the API, no redirect


def test_viewers_read_responders_answer_admins_configure(client: TestClient, db: Engine) -> None:
    incident = client.post("/incidents", json={"title": "Drift", "author": "ana", "models": []}).json()["id"]
    people = {role: bearer(add_person(db, f"{role.value}1", role)[1]) for role in Role}
    note = {"author": "x", "text": "on it"}
    assert client.get(f"/incidents/{incident}", headers=people[Role.viewer]).status_code == 200
    forbidden = client.post(f"/incidents/{incident}/notes", json=note, headers=people[Role.viewer])
    assert forbidden.status_code == 403 and forbidden.json()["detail"].startswith("this needs the responder role")
    assert client.post(f"/incidents/{incident}/notes", json=note, headers=people[Role.responder]).status_code == 201
    configure = client.put("/policy", json={"rules": []}, headers=people[Role.responder])
    assert configure.status_code == 403 and "admin" in configure.json()["detail"]


def test_the_timeline_names_the_person_not_the_body(client: TestClient, db: Engine) -> None:
    incident = client.post("/incidents", json={"title": "Drift", "author": "ana", "models": []}).json()["id"]
    _, responder = add_person(db, "rita", Role.responder)
    _, admin = add_person(db, "adam", Role.admin)
    client.post(f"/incidents/{incident}/notes", json={"author": "somebody-else", "text": "mine"},
                headers=bearer(responder))
    client.post(f"/incidents/{incident}/notes", json={"author": "slack-user", "text": "relayed"},
                headers=bearer(admin))
    timeline = client.get(f"/incidents/{incident}").json()["timeline"]
    notes = {e["text"]: e["author"] for e in timeline if e["kind"] == "note"}
    assert notes == {"mine": "rita", "relayed": "slack-user"}


def test_edits_of_action_items_and_overrides_name_the_person(client: TestClient, db: Engine) -> None:
    incident = client.post("/incidents", json={"title": "Drift", "author": "ana", "models": []}).json()["id"]
    item = client.post(f"/incidents/{incident}/action-items", json={"title": "Range check", "author": "ana"}).json()
    _, responder = add_person(db, "rita", Role.responder)
    done = client.patch(f"/incidents/{incident}/action-items/{item['id']}",
                        json={"author": "somebody-else", "status": "done"}, headers=bearer(responder))
    assert done.status_code == 200, done.text
    timeline = client.get(f"/incidents/{incident}").json()["timeline"]
    assert [e["author"] for e in timeline if e["kind"] == "action_item"][-1] == "rita"

    schedule = client.post("/schedules", json={"name": "ml", "time_zone": "UTC"}).json()
    add_person(db, "otto", Role.viewer)
    cover = client.post(f"/schedules/{schedule['id']}/overrides", json={
        "user": "otto", "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z", "author": "ana"}).json()
    moved = client.patch(f"/schedules/{schedule['id']}/overrides/{cover['id']}",
                         json={"end": "2030-01-03T00:00:00Z"}, headers=bearer(responder))
    assert moved.status_code == 200, moved.text
    assert moved.json()["author"] == "rita"


def test_webhook_secrets_are_write_only(client: TestClient, models: factories.BuiltModels) -> None:
    secret_url = "https://bot:pw@hooks.example/services/T01/B02/s3cr3t?token=abc123"
    factories.register_tensor(client, models, "churn", pipeline={"name": "etl", "webhook_url": secret_url})
    shown = client.get("/pipelines/etl").json()["webhook_url"]
    assert shown == "https://***@hooks.example/services/***?token=***"
    for path in ("/pipelines", "/pipelines/etl", "/models/churn", "/models"):
        body = client.get(path).text
        assert "abc123" not in body and "s3cr3t" not in body and "pw@" not in body, path


def test_every_write_is_audited_with_who_what_and_where(client: TestClient, db: Engine, settings: Settings) -> None:
    _, responder = add_person(db, "rita", Role.responder)
    _, viewer = add_person(db, "vic", Role.viewer)
    incident = client.post("/incidents", json={"title": "Drift", "author": "ana", "models": []}).json()["id"]
    client.post(f"/incidents/{incident}/notes", json={"author": "rita", "text": "hi"}, headers=bearer(responder))
    client.post(f"/incidents/{incident}/notes", json={"author": "vic", "text": "hi"}, headers=bearer(viewer))
    client.get("/incidents")  # reads are not audited
    entries = client.get("/audit").json()
    assert [(e["actor"], e["method"], e["route"], e["status"]) for e in entries] == [
        ("vic", "POST", "/incidents/{incident_id}/notes", 403),
        ("rita", "POST", "/incidents/{incident_id}/notes", 201),
        ("api-token", "POST", "/incidents", 201)]
    assert entries[1]["params"] == {"incident_id": str(incident)} and entries[1]["client"] == "testclient"
    assert [e["actor"] for e in client.get("/audit", params={"actor": "rita"}).json()] == ["rita"]
    assert [e["status"] for e in client.get("/audit", params={"status": 403}).json()] == [403]
    assert len(client.get("/audit", params={"path_prefix": f"/incidents/{incident}"}).json()) == 2
    assert client.get("/audit", params={"method": "delete"}).json() == []
    assert client.get("/audit", params={"since": "2999-01-01T00:00:00"}).json() == []
    first = client.get("/audit", params={"limit": 2})
    rest = client.get("/audit", params={"limit": 2, "before": first.headers["x-next-before"]}).json()
    assert [e["id"] for e in first.json() + rest] == [e["id"] for e in entries]
    assert client.get("/audit", headers=bearer(responder)).status_code == 403
    # An id past INTEGER (found by the fuzzer: PostgreSQL refused to bind it, a 500) is a 422 naming the field.
    beyond = client.get("/audit", params={"before": 2**31})
    assert beyond.status_code == 422 and beyond.json()["errors"][0]["field"] == "query.before"


def test_forwarded_for_counts_only_from_a_trusted_proxy(settings: Settings, db: Engine) -> None:
    def write(peer: str, trusted: str, forwarded: str) -> None:
        app = create_app(settings.model_copy(update={"trusted_proxies": trusted}), engine=db)
        with TestClient(app, client=(peer, 40000), headers=bearer(TOKEN)) as client:
            client.post("/incidents", json={"title": "A", "author": "ana", "models": []},
                        headers={"X-Forwarded-For": forwarded})

    write("192.0.2.1", "", "203.0.113.9")  # no proxy trusted: the header is anyone's to write
    write("192.0.2.1", "10.0.0.0/8", "203.0.113.9")  # the peer is not a trusted proxy
    write("10.0.0.2", "10.0.0.0/8", "203.0.113.9, 198.51.100.7, 10.1.2.3")  # nearest untrusted hop
    with TestClient(create_app(settings, engine=db), headers=bearer(TOKEN)) as client:
        clients = [e["client"] for e in client.get("/audit").json()]
    assert clients == ["198.51.100.7", "192.0.2.1", "192.0.2.1"]
