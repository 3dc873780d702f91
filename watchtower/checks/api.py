"""Read stored check runs: every statistic, threshold and verdict of every pass."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import col, select

from watchtower.checks.models import CheckResult, CheckRun
from watchtower.db import SessionDep
from watchtower.errors import problem_responses
from watchtower.registry.models import Monitor
from watchtower.registry.service import get_model

router = APIRouter(tags=["checks"], responses=problem_responses(404, 422))


class CheckResultRead(BaseModel):
    feature: str
    test: str
    statistic: float | None
    p_value: float | None
    score: float
    threshold: float
    direction: str
    breached: bool
    extra: dict[str, Any]


class CheckRunRead(BaseModel):
    id: int
    monitor: str
    detector: str
    engine: str
    params: dict[str, Any]
    status: str
    window_start: datetime
    window_end: datetime
    n_reference: int
    n_current: int
    error: str | None
    created_at: datetime
    results: list[CheckResultRead]


@router.get("/models/{name}/checks", response_model=list[CheckRunRead])
def list_checks(name: str, session: SessionDep, limit: Annotated[int, Query(gt=0, le=500)] = 50,
                status: str | None = None) -> list[CheckRunRead]:
    """The newest check runs of a model, with per-feature results."""
    model = get_model(session, name)
    query = select(CheckRun, Monitor.name).join(Monitor).where(CheckRun.model_id == model.id)
    if status:
        query = query.where(CheckRun.status == status)
    runs = session.exec(query.order_by(col(CheckRun.id).desc()).limit(limit)).all()
    results: dict[int, list[CheckResultRead]] = {}
    ids = [r.id for r, _ in runs]
    for result in session.exec(select(CheckResult).where(col(CheckResult.check_run_id).in_(ids))
                               .order_by(col(CheckResult.id))):
        results.setdefault(result.check_run_id, []).append(CheckResultRead.model_validate(result, from_attributes=True))
    return [CheckRunRead(**run.model_dump(exclude={"model_id", "monitor_id"}), monitor=monitor,
                         results=results.get(run.id or 0, [])) for run, monitor in runs]
