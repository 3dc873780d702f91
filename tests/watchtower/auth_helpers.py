"""People, tokens and a seeded world for the access tests: real rows, real tokens, one app per database."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.outbox.models import OutboxMessage, enqueue
from tests import factories
from watchtower.auth import tokens
from watchtower.auth.models import User
from watchtower.auth.roles import Role
from watchtower.registry.models import MonitoredModel, Pipeline

ACCESS_401 = ("sign in, or send a token: Authorization: Bearer <token>",
              "sign in at /auth/login, then send the form again",
              "the bearer token is unknown, expired or revoked, or its owner is deactivated")


def add_person(engine: Engine, handle: str, role: Role, *, token_role: Role | None = None,
               expires_at: datetime | None = None) -> tuple[int, str]:
    """A user with this role and a token (of `token_role`, default theirs); returns the token's id and secret."""
    with Session(engine) as session:
        user = User(handle=handle, display_name=handle.capitalize(), role=role.value)
        session.add(user)
        session.flush()
        token, secret = tokens.issue(session, name=f"{handle}'s", role=token_role or role, created_by="test",
                                     user=user, expires_at=expires_at)
        session.commit()
        return token.id or 0, secret


def pipeline_token(engine: Engine, model: str) -> str:
    """A service token of the pipeline behind `model`."""
    with Session(engine) as session:
        found = session.exec(select(MonitoredModel).where(MonitoredModel.name == model)).one()
        pipeline = session.get(Pipeline, found.pipeline_id)
        _, secret = tokens.issue(session, name="ingest", role=Role.viewer, created_by="test", pipeline=pipeline)
        session.commit()
        return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def refused_by_access(response: Response) -> int | None:
    """The status the access check refused with (401, 403, or 303 to the sign-in page), or None."""
    if response.status_code == 303 and response.headers["location"].startswith("/auth/login?next=/"):
        return 303
    if response.status_code not in (401, 403) or "json" not in response.headers.get("content-type", ""):
        return None
    detail = response.json().get("detail", "")
    if response.status_code == 401 and detail in ACCESS_401:
        return 401
    if response.status_code == 403 and detail.startswith(("this needs the ", "a pipeline token may only")):
        return 403
    return None


@dataclass
class World:
    """Rows every path parameter can name, and a token per kind of caller."""

    params: dict[str, Any]
    callers: dict[str, dict[str, str]]


def seed(client: TestClient, engine: Engine, models: factories.BuiltModels) -> World:
    """Two models on two pipelines, incidents, on-call, a silence, an escalation policy, an outbox message."""
    factories.register_tensor(client, models, "churn")
    factories.register_tensor(client, models, "other")
    ids = []
    for title in ("Churn drifted", "Churn drifted again"):
        filed = client.post("/incidents", json={"title": title, "author": "ana", "models": ["churn"],
                                                "tags": ["concept-drift"]})
        assert filed.status_code == 201, filed.text
        ids.append(filed.json()["id"])
    item = client.post(f"/incidents/{ids[0]}/action-items", json={"author": "ana", "title": "Retrain"})
    assert item.status_code == 201, item.text
    callers = {"anonymous": {}, "viewer": {}, "responder": {}, "admin": {}}
    for role in (Role.viewer, Role.responder, Role.admin):
        callers[role.value] = bearer(add_person(engine, f"{role.value}1", role)[1])
    spare, _ = add_person(engine, "spare", Role.viewer)  # DELETE /tokens/{token_id} revokes this one
    callers["pipeline"] = bearer(pipeline_token(engine, "churn"))
    schedule = client.post("/schedules", json={"name": "primary", "time_zone": "UTC"}).json()["id"]
    rotation = client.post(f"/schedules/{schedule}/rotations", json={
        "name": "l1", "participants": ["viewer1", "responder1"], "unit": "hours", "shift_length": 2,
        "handoff": "00:00", "start": "2026-01-01"})
    assert rotation.status_code == 201, rotation.text
    start = datetime(2026, 1, 2, tzinfo=UTC)
    override = client.post(f"/schedules/{schedule}/overrides", json={
        "user": "admin1", "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "author": "admin1", "reason": "swap"})
    assert override.status_code == 201, override.text
    now = datetime.now(UTC)
    silence = client.post("/silences", json={
        "matchers": [{"name": "model", "value": "churn"}], "created_by": "ada", "comment": "retrain",
        "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()})
    assert silence.status_code == 201, silence.text
    policy = client.post("/escalation-policies", json={"name": "standard", "repeat": 0, "default": True, "steps": [
        {"delay_minutes": 1, "targets": [{"user": "responder1"}]}]})
    assert policy.status_code == 201, policy.text
    with Session(engine) as session:
        enqueue(session, "webhook", {"url": "http://127.0.0.1:9/hook", "body": {}}, incident_id=ids[0])
        session.commit()
        message = session.exec(select(OutboxMessage)).one().id
    params = {"name": "churn", "monitor": "default", "incident_id": ids[0], "other_id": ids[1],
              "item_id": item.json()["id"], "tag": "concept-drift", "stage": "training", "schedule_id": schedule,
              "rotation_id": rotation.json()["id"], "override_id": override.json()["id"],
              "silence_id": silence.json()["id"], "message_id": message, "token_id": spare, "handle": "viewer1",
              "action": "pause_pipeline", "policy": "standard"}
    return World(params, callers)
