"""Personal and pipeline tokens: hashed at rest, expiry, revocation, last use, roles capped by the owner,
deactivated owners, a pipeline token's scope, and `watchtower user add`."""

import hashlib
import time
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests import factories
from tests.watchtower.auth_helpers import add_person, bearer, pipeline_token
from watchtower.app import create_app
from watchtower.auth.models import ApiToken, User
from watchtower.auth.roles import Role
from watchtower.cli import main
from watchtower.settings import Settings


def test_a_token_is_shown_once_and_stored_only_as_its_hash(client: TestClient, db: Engine) -> None:
    _, secret = add_person(db, "ana", Role.responder)
    created = client.post("/tokens", json={"name": "laptop", "role": "viewer"}, headers=bearer(secret))
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("wt_") and len(token) > 40 and created.json()["role"] == "viewer"
    with db.connect() as conn:
        stored = [tuple(str(v) for v in row) for row in conn.execute(text("SELECT * FROM api_token"))]
    assert not any(token in value for row in stored for value in row)
    assert hashlib.sha256(token.encode()).hexdigest() in [value for row in stored for value in row]
    listed = client.get("/tokens", headers=bearer(token)).json()
    assert [t["name"] for t in listed] == ["laptop", "ana's"] and all("token" not in t for t in listed)


def test_a_token_cannot_outrank_its_owner_and_follows_their_demotion(client: TestClient, db: Engine) -> None:
    _, secret = add_person(db, "ana", Role.responder)
    refused = client.post("/tokens", json={"name": "root", "role": "admin"}, headers=bearer(secret))
    assert refused.status_code == 403 and "responder" in refused.json()["detail"]
    note = {"author": "ana", "text": "looking"}
    incident = client.post("/incidents", json={"title": "Drift", "author": "ana", "models": []}).json()["id"]
    assert client.post(f"/incidents/{incident}/notes", json=note, headers=bearer(secret)).status_code == 201
    assert client.patch("/users/ana", json={"role": "viewer"}).status_code == 200
    demoted = client.post(f"/incidents/{incident}/notes", json=note, headers=bearer(secret))
    assert demoted.status_code == 403 and "responder" in demoted.json()["detail"]
    assert client.get("/incidents", headers=bearer(secret)).status_code == 200


def test_a_deactivated_owners_tokens_stop_working(client: TestClient, db: Engine) -> None:
    _, secret = add_person(db, "ana", Role.admin)
    assert client.get("/models", headers=bearer(secret)).status_code == 200
    assert client.patch("/users/ana", json={"active": False}).status_code == 200
    assert client.get("/models", headers=bearer(secret)).status_code == 401


def test_expired_and_revoked_tokens_are_refused(client: TestClient, db: Engine) -> None:
    _, old = add_person(db, "old", Role.viewer, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert client.get("/models", headers=bearer(old)).status_code == 401
    token_id, secret = add_person(db, "ana", Role.viewer)
    _, other = add_person(db, "bob", Role.viewer)
    assert client.delete(f"/tokens/{token_id}", headers=bearer(other)).status_code == 404  # not bob's
    beyond = client.delete(f"/tokens/{2**31}", headers=bearer(other))  # past INTEGER: a 422, not a database error
    assert beyond.status_code == 422 and beyond.json()["errors"][0]["field"] == "path.token_id"
    assert client.get("/models", headers=bearer(secret)).status_code == 200
    revoked = client.delete(f"/tokens/{token_id}", headers=bearer(secret))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/models", headers=bearer(secret)).status_code == 401
    admin_view = client.get("/tokens", params={"all": "true"}).json()
    assert {t["owner"] for t in admin_view} == {"old", "ana", "bob"}
    assert client.get("/tokens", params={"all": "true"}, headers=bearer(other)).status_code == 403


def test_last_use_is_recorded_at_most_once_a_minute(client: TestClient, db: Engine) -> None:
    token_id, secret = add_person(db, "ana", Role.viewer)

    def last_used() -> datetime | None:
        with Session(db) as session:
            token = session.get(ApiToken, token_id)
            assert token is not None
            return token.last_used_at

    assert last_used() is None
    client.get("/models", headers=bearer(secret))
    first = last_used()
    assert first is not None
    client.get("/models", headers=bearer(secret))
    assert last_used() == first  # within the minute: no write
    with Session(db) as session:
        token = session.get(ApiToken, token_id)
        assert token is not None
        token.last_used_at = first - timedelta(minutes=2)
        session.add(token)
        session.commit()
    client.get("/models", headers=bearer(secret))
    assert (later := last_used()) is not None and later > first - timedelta(seconds=1)


def test_a_pipeline_token_polls_and_feeds_only_its_own_pipeline(client: TestClient, db: Engine,
                                                                 models: factories.BuiltModels) -> None:
    factories.register_tensor(client, models, "churn")
    factories.register_tensor(client, models, "other")
    token = bearer(pipeline_token(db, "churn"))
    assert client.get("/pipelines/churn", headers=token).status_code == 200
    assert client.get("/pipelines/other", headers=token).status_code == 403
    served = factories.serve(TestClient(client.app, headers=token), "churn", factories.make_frame(20), labels=True)
    assert len(served) == 20  # predictions and labels went in with the pipeline's token
    labels = {"labels": [{"id": served[0]["id"], "label": 1}]}
    refused = client.post("/models/other/labels", json=labels, headers=token)
    assert refused.status_code == 403 and "own pipeline" in refused.json()["detail"]
    for method, path in (("GET", "/models/churn"), ("GET", "/incidents"), ("POST", "/models/churn/restore")):
        assert client.request(method, path, headers=token).status_code == 403
    issued = client.post("/pipelines/churn/tokens", json={"name": "airflow"})
    assert issued.status_code == 201 and issued.json()["pipeline"] == "churn" and issued.json()["role"] is None
    assert client.get("/pipelines/churn", headers=bearer(issued.json()["token"])).status_code == 200


def test_the_shared_api_token_is_an_admin_without_tokens_of_its_own(client: TestClient) -> None:
    assert client.get("/audit").status_code == 200
    refused = client.post("/tokens", json={"name": "mine"})
    assert refused.status_code == 403 and "watchtower user add" in refused.json()["detail"]


def test_user_add_prints_a_first_admin_token(app: FastAPI, db: Engine, monkeypatch: object,
                                             capsys: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch) and isinstance(capsys, pytest.CaptureFixture)
    monkeypatch.setenv("WATCHTOWER_DATABASE_URL", db.url.render_as_string(hide_password=False))
    assert main(["user", "add", "--admin", "root"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    with TestClient(app) as fresh:
        assert fresh.get("/audit", headers=bearer(secret)).status_code == 200
    assert main(["user", "add", "--admin", "root"]) == 2  # taken
    assert main(["user", "add", "Not A Handle"]) == 2
    with Session(db) as session:
        assert [(u.handle, u.role) for u in session.exec(select(User))] == [("root", "admin")]


def test_a_token_revoked_by_another_replica_is_refused_within_the_cache_interval(settings: Settings,
                                                                                 db: Engine) -> None:
    token_id, secret = add_person(db, "ana", Role.viewer)
    app = create_app(settings.model_copy(update={"auth_cache_s": 0.3}), engine=db)
    with TestClient(app) as client:
        assert client.get("/models", headers=bearer(secret)).status_code == 200  # read once, now remembered
        with db.begin() as conn:  # another process revokes it: no commit of this one's ORM to drop the cache
            conn.execute(text("UPDATE api_token SET revoked_at = :now WHERE id = :id"),
                         {"now": datetime.now(UTC).replace(tzinfo=None), "id": token_id})
        assert client.get("/models", headers=bearer(secret)).status_code == 200  # within the interval
        time.sleep(0.35)
        assert client.get("/models", headers=bearer(secret)).status_code == 401
