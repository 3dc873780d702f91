"""Holds over JSON: which automatic actions an operator's restore or resume holds, and re-arming them."""

from fastapi import APIRouter

from watchtower.actions.models import ActionRun
from watchtower.auth.access import PrincipalDep
from watchtower.auth.bearer import WriteAccess
from watchtower.auth.principal import attributed
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import problem_responses
from watchtower.policy import holds
from watchtower.policy.holds import Holdable, HoldRead
from watchtower.registry.params import ModelName
from watchtower.registry.schemas import OperatorDecision
from watchtower.registry.service import get_model

router = APIRouter(tags=["policy"], responses=problem_responses(404))


@router.get("/models/{name}/holds", response_model=list[HoldRead])
def list_holds(name: ModelName, session: SessionDep, active: bool = False) -> list[HoldRead]:
    """The model's holds, newest first, each saying whether it still holds and, if not, why (?active=true: only
    those that hold now)."""
    model = get_model(session, name)
    return [holds.hold_read(h, why) for h, why in holds.holds_of(session, model.id, utcnow(), active_only=active)]


@router.post("/models/{name}/holds/{action}/rearm", response_model=list[HoldRead], dependencies=WriteAccess,
             responses=problem_responses(401, 404, 422))
def rearm(name: ModelName, action: Holdable, body: OperatorDecision, session: SessionDep,
          principal: PrincipalDep) -> list[HoldRead]:
    """End the hold of an automatic action now (recorded with who and why): the next confirmed breach acts."""
    body = attributed(body, principal)
    model = get_model(session, name)
    assert model.id is not None
    now = utcnow()
    released = holds.rearm(session, model.id, action, body.author, body.reason, now)
    session.add(ActionRun(model_id=model.id, incident_id=released[0].incident_id, action="rearm", ok=True,
                          detail=f"automatic {holds.WORDS[action]} re-armed", author=body.author,
                          reason=body.reason, created_at=now))
    session.commit()
    return [holds.hold_read(h, holds.ended(h, None, now)) for h in released]

