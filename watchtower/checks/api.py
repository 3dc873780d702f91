"""Read stored check runs (every statistic, threshold and verdict of every pass) and learned thresholds."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import col, select

from watchtower import learned_thresholds
from watchtower.auth.bearer import WriteAccess
from watchtower.checks.models import CheckResult, CheckRun, FittedThreshold
from watchtower.deps import SessionDep
from watchtower.errors import NotFound, problem_responses
from watchtower.registry.models import Monitor
from watchtower.registry.params import ModelName, MonitorName
from watchtower.registry.service import get_model

CheckStatus = Literal["ok", "breached", "insufficient_data", "error"]  # what monitor_check.check stores
router = APIRouter(tags=["checks"], responses=problem_responses(404, 422))
writes = APIRouter(tags=["checks"], dependencies=WriteAccess, responses=problem_responses(401, 404, 422))


class CheckResultRead(BaseModel):
    feature: str
    test: str
    statistic: float | None
    p_value: float | None
    score: float
    threshold: float
    direction: str
    breached: bool
    threshold_source: str
    extra: dict[str, Any]
    mode: str = Field(description='"exact" (on the rows) or "sketch k=<k>" (on merged profiles; extra.error_bound '
                      "bounds the statistic's error)")
    note: str = Field(description="What the mode means for this verdict: near threshold, a test replaced; or empty")


class FittedThresholdRead(BaseModel):
    detector: str
    test: str
    feature: str
    value: float | None
    source: str
    n: int
    direction: str
    fitted_at: datetime


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
    decision_id: int | None = None  # what the response policy made of this pass: GET /models/{name}/decisions
    results: list[CheckResultRead]


@router.get("/models/{name}/checks", response_model=list[CheckRunRead])
def list_checks(name: ModelName, session: SessionDep, limit: Annotated[int, Query(gt=0, le=500)] = 50,
                status: CheckStatus | None = None) -> list[CheckRunRead]:
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


@router.get("/models/{name}/monitors/{monitor}/thresholds", response_model=list[FittedThresholdRead])
def list_thresholds(name: ModelName, monitor: MonitorName, session: SessionDep) -> list[FittedThresholdRead]:
    """The monitor's learned thresholds as last fitted: value, how it was learned, from how many scores."""
    row = _monitor(session, name, monitor)
    fitted = session.exec(select(FittedThreshold).where(FittedThreshold.monitor_id == row.id)
                          .order_by(col(FittedThreshold.detector), col(FittedThreshold.test),
                                    col(FittedThreshold.feature))).all()
    return [FittedThresholdRead.model_validate(f, from_attributes=True) for f in fitted]


@writes.post("/models/{name}/monitors/{monitor}/thresholds/refit", response_model=list[FittedThresholdRead])
def refit_thresholds(name: ModelName, monitor: MonitorName, session: SessionDep,
                     request: Request) -> list[FittedThresholdRead]:
    """Re-fit the monitor's learned thresholds now (the scheduler also does, every threshold_refit_s)."""
    _monitor(session, name, monitor)
    session.commit()  # end this request's transaction: on SQLite it holds the write lock refit needs
    learned_thresholds.refit(request.app.state.runtime, name, monitor)
    return list_thresholds(name, monitor, session)


def _monitor(session: SessionDep, name: str, monitor: str) -> Monitor:
    model = get_model(session, name)
    row = session.exec(select(Monitor).where(Monitor.model_id == model.id, Monitor.name == monitor)).first()
    if row is None:
        raise NotFound(f"model '{name}' has no monitor '{monitor}'")
    return row
