"""POST /slack/interactions: button clicks from Slack, verified by signature, answered at once, done after.

Slack cannot send our bearer token, so the signature over the raw body is this endpoint's authentication
(slack-sdk's SignatureVerifier: HMAC-SHA256 with the signing secret, and at most five minutes old, so a
captured request cannot be replayed later). Slack wants an answer within 3 s: the route answers 200 and the
work runs after it as a Starlette BackgroundTask (as Dispatch does). Each click is done as the Watchtower
user whose Slack member id clicked, and recorded on the incident's timeline with them as author.
"""

import json
import logging
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.background import BackgroundTask

from alerts.metrics import Metrics
from alerts.outbox import enqueue
from alerts.slack.messages import ACK, RESOLVE, RESTORE, RESUME, SILENCE, SILENCE_HOURS, ephemeral_payload
from alerts.slack.updates import incident_changed
from postmortems.lifecycle import observe_stage
from postmortems.models import Incident, Status
from postmortems.service import get_incident, transition
from watchtower.actions.restore import restore_primary, resume_pipeline
from watchtower.auth import audit
from watchtower.auth.models import User
from watchtower.auth.principal import Principal
from watchtower.auth.roles import Role
from watchtower.auth.users import user_by_slack_id
from watchtower.db import writer
from watchtower.errors import (
    Conflict,
    Forbidden,
    Invalid,
    Unauthorized,
    WatchtowerError,
    field_error,
    problem_responses,
)
from watchtower.registry.models import MonitoredModel, Pipeline

log = logging.getLogger(__name__)
router = APIRouter(tags=["slack"])
REASON = "from Slack"


class SlackUser(BaseModel):
    id: str


class SelectedOption(BaseModel):
    value: str


class BlockAction(BaseModel):
    """One clicked button (value) or chosen option (selected_option); other fields Slack sends are ignored."""

    action_id: str
    value: str | None = None
    selected_option: SelectedOption | None = None


class Interaction(BaseModel):
    """The parts of a block_actions payload Watchtower uses."""

    type: str
    user: SlackUser
    actions: list[BlockAction] = []
    response_url: str | None = None


@router.post("/slack/interactions", responses=problem_responses(401, 422),
             openapi_extra={"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
                 "type": "object", "properties": {"payload": {"type": "string"}}}}}}})
async def interactions(request: Request) -> Response:
    """Slack's interactivity request URL. Signed by Slack (no bearer token); 401 and nothing done otherwise."""
    body = await request.body()  # the raw bytes: the signature covers them exactly as sent
    secret = request.app.state.settings.slack_signing_secret
    if secret is None:
        raise Unauthorized("Slack interactions are refused: WATCHTOWER_SLACK_SIGNING_SECRET is not set",
                           errors=[field_error("header.x-slack-signature", "no signing secret configured")])
    if not _signed(secret.get_secret_value(), body, dict(request.headers)):
        raise Unauthorized("bad, missing or stale Slack signature; nothing was done", errors=[field_error(
            "header.x-slack-signature", "must be Slack's v0 signature of this body, made less than 5 minutes ago")])
    interaction = _parse(body)
    if interaction is None:
        return Response(status_code=200)  # not a button click (Watchtower sends no modals or shortcuts)
    return Response(status_code=200, background=BackgroundTask(handle, request.app.state.engine, interaction,
                                                                request.app.state.metrics))


def _signed(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    from slack_sdk.signature import SignatureVerifier  # with the first click, not with the app

    try:
        return SignatureVerifier(secret).is_valid_request(body, headers)
    except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number, a body that is not UTF-8
        return False


def _parse(body: bytes) -> Interaction | None:
    """The form's `payload` JSON as a block_actions interaction; None for other interaction types."""
    form = parse_qs(body.decode("utf-8"))
    if not form.get("payload"):
        raise Invalid("no payload form field", errors=[field_error("body.payload", "Field required")])
    try:
        raw = json.loads(form["payload"][0])
    except json.JSONDecodeError as exc:
        raise Invalid("payload is not JSON", errors=[field_error("body.payload", f"not JSON: {exc}")]) from exc
    if not isinstance(raw, dict) or raw.get("type") != "block_actions":
        return None
    try:
        return Interaction.model_validate(raw)
    except ValidationError as exc:
        errors = [field_error(".".join(["body", "payload", *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
        raise Invalid("payload is not a block_actions interaction", errors=errors) from exc


def handle(engine: Engine, interaction: Interaction, metrics: Metrics | None = None) -> None:
    """Do what was clicked, as the person who clicked; answer only them when that cannot be done."""
    with Session(writer(engine)) as session:
        user = user_by_slack_id(session, interaction.user.id)
        if user is None:
            log.warning("Slack user %s clicked, but no active Watchtower user has that Slack id", interaction.user.id)
            _answer(session, interaction, "Watchtower does not know who you are (Slack member id "
                    f"{interaction.user.id}), so nothing was done. Ask an admin to add it to your user: "
                    "PATCH /users/{handle} with slack_user_id.")
            session.commit()
            return
        moved = []
        clicker = Principal(actor=user.handle, role=Role(user.role), handle=user.handle, user_id=user.id)
        for action in interaction.actions:
            status = 200
            try:
                with session.begin_nested():
                    log.info("Slack: %s clicked %s", user.handle, action.action_id)
                    if not clicker.allows(Role.responder):  # as the API: answering incidents is a responder's
                        raise Forbidden(f"this needs the responder role; {user.handle} is a {user.role}")
                    moved.append(act(session, user, action))
            except WatchtowerError as exc:
                status = exc.status
                _answer(session, interaction, f"Nothing done: {exc.detail}")
            # A human action outside a request of theirs: the audit log names them, not "anonymous".
            audit.record(session, clicker, "SLACK", f"slack:{action.action_id}", "/slack/interactions",
                         {"value": (action.selected_option.value if action.selected_option else action.value) or ""},
                         status, None)
        session.commit()
        for incident in moved:  # as the API and the pages do: time to acknowledge/resolve, acknowledgements
            if incident is not None and metrics is not None:
                observe_stage(metrics, incident)


def act(session: Session, user: User, action: BlockAction) -> Incident | None:
    """Carry out one button or option; the services record it on the incident's timeline. Returns the incident
    when its status moved (for the metrics)."""
    incident, hours = _target(session, action)
    assert incident.id is not None
    if action.action_id == ACK:
        return transition(session, incident, Status.acknowledged, user.handle, REASON)
    if action.action_id == RESOLVE:
        return transition(session, incident, Status.resolved, user.handle, REASON)
    if action.action_id == RESTORE:
        restore_primary(session, _model(session, incident), user.handle, f"{REASON}, incident #{incident.id}")
    elif action.action_id == RESUME:
        model = _model(session, incident)
        pipeline = session.get(Pipeline, model.pipeline_id)
        assert pipeline is not None
        resume_pipeline(session, pipeline, user.handle, f"{REASON}, incident #{incident.id}")
    elif action.action_id == SILENCE:
        if hours is None:
            raise Invalid("choose how long to silence for")
        from alerts.silences import silence_incident  # part of the silences work, merged separately

        silence_id = silence_incident(session, incident.id, hours, user.handle)
        incident_changed(session, incident.id, f"Silenced for {hours} h by {user.handle} (silence #{silence_id})")
    else:
        raise Invalid(f"unknown action '{action.action_id}'")
    return None


def _target(session: Session, action: BlockAction) -> tuple[Incident, int | None]:
    """The incident a button names (its value, or the chosen option's), and the silence hours if any."""
    raw = action.selected_option.value if action.selected_option else action.value
    try:
        value = json.loads(raw or "")
        incident_id, hours = int(value["incident_id"]), value.get("hours")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise Invalid(f"the {action.action_id} button carries no incident id") from exc
    if hours is not None and hours not in SILENCE_HOURS:
        raise Invalid(f"silences from Slack last {', '.join(map(str, SILENCE_HOURS))} hours, not {hours}")
    return get_incident(session, incident_id), hours


def _model(session: Session, incident: Incident) -> MonitoredModel:
    model = session.get(MonitoredModel, incident.model_id) if incident.model_id is not None else None
    if model is None:
        raise Conflict(f"incident #{incident.id} is not about a registered model")
    return model


def _answer(session: Session, interaction: Interaction, text: str) -> None:
    """An ephemeral answer to the person who clicked, through the outbox and the click's response_url."""
    if interaction.response_url:
        enqueue(session, "slack", ephemeral_payload(interaction.response_url, text))
    else:
        log.warning("could not answer Slack user %s (no response_url): %s", interaction.user.id, text)
