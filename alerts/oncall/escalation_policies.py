"""Escalation policies in the database: save (targets checked), route models, and freeze a chain for an incident."""

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from alerts.oncall.escalation_models import EscalationPolicy, EscalationRoute
from alerts.oncall.escalation_schemas import PolicyCreate, PolicyRead, PolicyUpdate, RouteRead, Step
from alerts.oncall.models import Schedule
from watchtower.auth.models import User
from watchtower.clock import utcnow
from watchtower.errors import Conflict, Invalid, NotFound, field_error
from watchtower.registry.models import MonitoredModel


def get_policy(session: Session, name: str) -> EscalationPolicy:
    """The policy with this name, or NotFound."""
    policy = session.exec(select(EscalationPolicy).where(EscalationPolicy.name == name)).first()
    if policy is None:
        raise NotFound(f"no escalation policy named '{name}'")
    return policy


def default_policy(session: Session) -> EscalationPolicy | None:
    """The policy of every model without a route of its own."""
    return session.exec(select(EscalationPolicy).where(col(EscalationPolicy.is_default))).first()


def policy_for(session: Session, model_id: int | None) -> tuple[EscalationPolicy | None, str]:
    """The policy a model's incidents start, and why ("model", "default" or "none")."""
    if model_id is not None:
        route = session.get(EscalationRoute, model_id)
        if route is not None:
            return session.get(EscalationPolicy, route.policy_id), "model"
    found = default_policy(session)
    return found, "default" if found else "none"


def _check_targets(session: Session, steps: list[Step], field: str) -> None:
    """Unknown schedules and handles are refused (422 naming the target), so a chain never pages nobody by typo."""
    errors = []
    for i, step in enumerate(steps):
        for j, target in enumerate(step.targets):
            where = f"{field}.{i}.targets.{j}.{target.kind}"
            if target.schedule is not None and session.exec(
                    select(Schedule.id).where(Schedule.name == target.schedule)).first() is None:
                errors.append(field_error(where, f"no schedule named '{target.schedule}'"))
            if target.user is not None and session.exec(
                    select(User.id).where(User.handle == target.user)).first() is None:
                errors.append(field_error(where, f"no user with handle '{target.user}'"))
    if errors:
        raise Invalid("; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors=errors)


def _stored(steps: list[Step]) -> list[dict[str, Any]]:
    return [{"delay_minutes": s.delay_minutes, "targets": [{t.kind: t.value} for t in s.targets]} for s in steps]


def _make_default(session: Session, policy: EscalationPolicy) -> None:
    """One default at a time: naming a new one un-defaults the old one."""
    for other in session.exec(select(EscalationPolicy).where(col(EscalationPolicy.is_default))).all():
        if other.id != policy.id:
            other.is_default = False
            session.add(other)
    policy.is_default = True


def create_policy(session: Session, body: PolicyCreate) -> EscalationPolicy:
    """A new policy; 409 if the name is taken."""
    _check_targets(session, body.steps, "body.steps")
    policy = EscalationPolicy(name=body.name, description=body.description, repeat=body.repeat,
                              steps=_stored(body.steps))
    if body.default:
        _make_default(session, policy)
    try:
        with session.begin_nested():
            session.add(policy)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an escalation policy named '{body.name}' exists",
                       errors=[field_error("body.name", "taken")]) from exc
    return policy


def update_policy(session: Session, policy: EscalationPolicy, body: PolicyUpdate) -> EscalationPolicy:
    """Change a policy; escalations already started keep their frozen chain."""
    if body.steps is not None:
        _check_targets(session, body.steps, "body.steps")
        policy.steps = _stored(body.steps)
    if body.description is not None:
        policy.description = body.description
    if body.repeat is not None:
        policy.repeat = body.repeat
    if body.default is True:
        _make_default(session, policy)
    elif body.default is False:
        policy.is_default = False
    policy.updated_at = utcnow()
    session.add(policy)
    session.flush()
    return policy


def delete_policy(session: Session, policy: EscalationPolicy) -> None:
    """Delete a policy no model routes to (its running escalations go on: they are frozen)."""
    routed = session.exec(select(MonitoredModel.name).join(EscalationRoute, col(EscalationRoute.model_id) ==
                                                           col(MonitoredModel.id))
                          .where(EscalationRoute.policy_id == policy.id)).all()
    if routed:
        raise Conflict(f"models route to '{policy.name}': {', '.join(sorted(routed))}; route them elsewhere first")
    session.delete(policy)
    session.flush()


def policy_read(session: Session, policy: EscalationPolicy) -> PolicyRead:
    """The API view, with the models routed here."""
    assert policy.id is not None
    models = session.exec(select(MonitoredModel.name).join(EscalationRoute, col(EscalationRoute.model_id) ==
                                                           col(MonitoredModel.id))
                          .where(EscalationRoute.policy_id == policy.id).order_by(col(MonitoredModel.name))).all()
    return PolicyRead(id=policy.id, name=policy.name, description=policy.description, steps=policy.steps,
                      repeat=policy.repeat, default=policy.is_default, models=list(models),
                      updated_at=policy.updated_at)


def set_route(session: Session, model: MonitoredModel, policy: EscalationPolicy) -> None:
    """Route the model's new incidents to `policy`."""
    assert model.id is not None and policy.id is not None
    route = session.get(EscalationRoute, model.id) or EscalationRoute(model_id=model.id, policy_id=policy.id)
    route.policy_id = policy.id
    session.add(route)
    session.flush()


def clear_route(session: Session, model: MonitoredModel) -> None:
    """The model goes back to the default policy."""
    route = session.get(EscalationRoute, model.id)
    if route is not None:
        session.delete(route)
        session.flush()


def route_read(session: Session, model: MonitoredModel) -> RouteRead:
    policy, source = policy_for(session, model.id)
    return RouteRead(model=model.name, policy=policy.name if policy else None, source=source)


def freeze(session: Session, policy: EscalationPolicy) -> dict[str, Any]:
    """The chain as it is now, with schedules pinned by id (a renamed schedule still pages its people)."""
    ids = dict(session.exec(select(Schedule.name, Schedule.id)).all())
    steps = [{"delay_minutes": s["delay_minutes"],
              "targets": [t | ({"schedule_id": ids.get(t["schedule"])} if "schedule" in t else {})
                          for t in s["targets"]]} for s in policy.steps]
    return {"policy": policy.name, "repeat": policy.repeat, "steps": steps}
