"""Escalation policies over JSON: CRUD, which policy each model routes to, and an incident's escalation."""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlmodel import col, select

from alerts.oncall import escalation_policies as policies
from alerts.oncall.escalation_models import EscalationPolicy, IncidentEscalation
from alerts.oncall.escalation_schemas import (
    NAME,
    EscalationRead,
    PolicyCreate,
    PolicyRead,
    PolicyUpdate,
    RouteRead,
    RouteSet,
)
from watchtower.auth.bearer import WriteAccess
from watchtower.deps import SessionDep
from watchtower.errors import Invalid, NotFound, field_error, problem_responses
from watchtower.limits import Id
from watchtower.registry.params import ModelName
from watchtower.registry.service import get_model

router = APIRouter(tags=["escalation"], responses=problem_responses(404, 422))
PolicyName = Annotated[str, Path(pattern=NAME, description="The policy's name")]
writes = APIRouter(tags=["escalation"], dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422))


@router.get("/escalation-policies", response_model=list[PolicyRead])
def list_policies(session: SessionDep) -> list[PolicyRead]:
    """Every policy with its steps and the models routed to it, by name."""
    return [policies.policy_read(session, p) for p in
            session.exec(select(EscalationPolicy).order_by(col(EscalationPolicy.name))).all()]


@router.get("/escalation-policies/{name}", response_model=PolicyRead)
def read_policy(name: PolicyName, session: SessionDep) -> PolicyRead:
    """One policy."""
    return policies.policy_read(session, policies.get_policy(session, name))


@writes.post("/escalation-policies", response_model=PolicyRead, status_code=201)
def add_policy(body: PolicyCreate, session: SessionDep) -> PolicyRead:
    """A new policy; unknown schedules or handles are a 422 naming the target."""
    policy = policies.create_policy(session, body)
    session.commit()
    return policies.policy_read(session, policy)


@writes.patch("/escalation-policies/{name}", response_model=PolicyRead)
def change_policy(name: PolicyName, body: PolicyUpdate, session: SessionDep) -> PolicyRead:
    """Change a policy; escalations under way keep the chain they started with."""
    policy = policies.update_policy(session, policies.get_policy(session, name), body)
    session.commit()
    return policies.policy_read(session, policy)


@writes.delete("/escalation-policies/{name}", status_code=204)
def remove_policy(name: PolicyName, session: SessionDep) -> Response:
    """Delete a policy no model routes to (409 otherwise)."""
    policies.delete_policy(session, policies.get_policy(session, name))
    session.commit()
    return Response(status_code=204)


@router.get("/models/{name}/escalation", response_model=RouteRead)
def read_route(name: ModelName, session: SessionDep) -> RouteRead:
    """The policy the model's new incidents start, and whether it is its own or the default."""
    return policies.route_read(session, get_model(session, name))


@writes.put("/models/{name}/escalation", response_model=RouteRead)
def put_route(name: ModelName, body: RouteSet, session: SessionDep) -> RouteRead:
    """Route the model's new incidents to a policy."""
    model = get_model(session, name)
    try:
        policy = policies.get_policy(session, body.policy)
    except NotFound as exc:  # a body naming nothing is bad input, not a missing resource
        raise Invalid(exc.detail, errors=[field_error("body.policy", exc.detail)]) from exc
    policies.set_route(session, model, policy)
    session.commit()
    return policies.route_read(session, model)


@writes.delete("/models/{name}/escalation", response_model=RouteRead)
def delete_route(name: ModelName, session: SessionDep) -> RouteRead:
    """Send the model back to the default policy."""
    model = get_model(session, name)
    policies.clear_route(session, model)
    session.commit()
    return policies.route_read(session, model)


@router.get("/incidents/{incident_id}/escalation", response_model=EscalationRead)
def read_escalation(incident_id: Id, session: SessionDep) -> EscalationRead:
    """An incident's escalation: the chain frozen when it started, the next step and when it is due."""
    found = session.get(IncidentEscalation, incident_id)
    if found is None:
        raise NotFound(f"incident {incident_id} has no escalation")
    return EscalationRead(**found.model_dump())
