"""The response policy over JSON: per model, and the default for every model without its own."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import Session, col, select

from watchtower.auth.bearer import WriteAccess
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import NotFound, problem_responses
from watchtower.policy import store
from watchtower.policy.backtest import BacktestRequest, BacktestResult
from watchtower.policy.backtest_store import backtest_model
from watchtower.policy.models import PolicyDecision
from watchtower.policy.rules import DEFAULT_POLICY, Policy
from watchtower.registry.models import Monitor
from watchtower.registry.params import ModelName
from watchtower.registry.service import get_model

router = APIRouter(tags=["policy"], responses=problem_responses(404))
writes = APIRouter(tags=["policy"], dependencies=WriteAccess, responses=problem_responses(401, 404, 422))


class PolicyRead(BaseModel):
    """A policy and where it comes from: the model's own, the stored default, or the built-in default."""

    scope: store.Scope
    policy: Policy
    updated_by: str | None = None
    updated_at: datetime | None = None


def policy_read(session: Session, model_id: int | None) -> PolicyRead:
    """The policy that applies to a model (model_id None: to models without their own)."""
    row, scope = store.applicable(session, model_id)
    return PolicyRead(scope=scope, policy=Policy.model_validate(row.body) if row else DEFAULT_POLICY,
                      updated_by=row.updated_by if row else None, updated_at=row.updated_at if row else None)


@router.get("/policy", response_model=PolicyRead)
def read_default(session: SessionDep) -> PolicyRead:
    """The policy of every model without its own (the built-in default until one is stored)."""
    return policy_read(session, None)


@writes.put("/policy", response_model=PolicyRead)
def put_default(body: Policy, session: SessionDep) -> PolicyRead:
    """Replace the default policy; models with their own policy keep it."""
    store.put_policy(session, None, body, "api")
    session.commit()
    return policy_read(session, None)


@router.get("/models/{name}/policy", response_model=PolicyRead)
def read_model_policy(name: ModelName, session: SessionDep) -> PolicyRead:
    """The policy that applies to the model, and whether it is its own or the default."""
    model = get_model(session, name)
    return policy_read(session, model.id)


@writes.put("/models/{name}/policy", response_model=PolicyRead)
def put_model_policy(name: ModelName, body: Policy, session: SessionDep) -> PolicyRead:
    """Give the model a policy of its own (validated: a 422 names the field)."""
    model = get_model(session, name)
    store.put_policy(session, model.id, body, "api")
    session.commit()
    return policy_read(session, model.id)


@writes.delete("/models/{name}/policy", response_model=PolicyRead)
def delete_model_policy(name: ModelName, session: SessionDep) -> PolicyRead:
    """Drop the model's own policy: the default applies again."""
    model = get_model(session, name)
    if not store.delete_policy(session, model.id or 0):
        raise NotFound(f"model '{name}' has no policy of its own; the default applies")
    session.commit()
    return policy_read(session, model.id)


class DecisionRead(BaseModel):
    """What the policy made of one monitor pass."""

    id: int
    monitor: str
    at: datetime
    verdict: bool
    matched: list[str]
    fired: list[str]
    actions: list[dict[str, Any]]
    severity: str | None
    explanation: str
    policy_scope: str
    incident_id: int | None


@router.get("/models/{name}/decisions", response_model=list[DecisionRead])
def list_decisions(name: ModelName, session: SessionDep,
                   limit: Annotated[int, Query(gt=0, le=500)] = 50) -> list[DecisionRead]:
    """The newest policy decisions of a model: rules matched and fired, and what was done, held or dry-run."""
    model = get_model(session, name)
    rows = session.exec(select(PolicyDecision, Monitor.name).join(Monitor, col(Monitor.id) == PolicyDecision.monitor_id)
                        .where(PolicyDecision.model_id == model.id)
                        .order_by(col(PolicyDecision.at).desc(), col(PolicyDecision.id).desc()).limit(limit)).all()
    return [DecisionRead(**d.model_dump(exclude={"model_id", "monitor_id"}), monitor=monitor) for d, monitor in rows]


@router.post("/models/{name}/policy/backtest", response_model=BacktestResult, responses=problem_responses(422))
def backtest_policy(name: ModelName, body: BacktestRequest, session: SessionDep) -> BacktestResult:
    """Replay the period's stored passes against a candidate policy, beside the current one and what it did."""
    return backtest_model(session, get_model(session, name), body.policy, body.since, body.until, utcnow())


router.include_router(writes)
