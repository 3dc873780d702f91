"""Read what a backtest replays from the database: a model's passes, operator decisions and live decisions."""

from datetime import datetime
from typing import Any, cast

from sqlmodel import Session, col, select

from detectors.base import Finding
from postmortems.models import Incident, TimelineEntry
from watchtower.actions.models import ActionRun
from watchtower.checks.models import CheckResult, CheckRun
from watchtower.policy.backtest import (
    BacktestResult,
    LiveDecision,
    Loader,
    OperatorEvent,
    Record,
    StoredPass,
    backtest,
    period,
)
from watchtower.policy.breach import DetectorOutcome
from watchtower.policy.models import PolicyDecision
from watchtower.policy.rules import Policy
from watchtower.policy.store import effective_policy
from watchtower.registry.models import Monitor, MonitoredModel


def loader(session: Session, model_id: int, model_name: str, since: datetime, until: datetime) -> Loader:
    """Read a model's passes, operator decisions and live decisions of [since, until] from the database."""

    def load(warm: int) -> Record:
        monitors = {cast(int, i): name for i, name in session.exec(
            select(Monitor.id, Monitor.name).where(Monitor.model_id == model_id)).all()}
        in_period = (CheckRun.model_id == model_id, col(CheckRun.created_at) >= since,
                     col(CheckRun.created_at) <= until)
        warmup: dict[int, list[StoredPass]] = {}
        for monitor_id in monitors if warm > 0 else ():
            ids = session.exec(select(PolicyDecision.id).where(
                PolicyDecision.monitor_id == monitor_id, col(PolicyDecision.verdict), col(PolicyDecision.at) < since)
                .order_by(col(PolicyDecision.at).desc(), col(PolicyDecision.id).desc()).limit(warm)).all()
            if ids:
                warmup[monitor_id] = _passes(session, (col(CheckRun.decision_id).in_(ids),))[::-1]
        resolved = session.exec(select(Incident.id, Incident.group_key, Incident.resolved_at).where(
            Incident.model_id == model_id, col(Incident.resolved_at) >= since,
            col(Incident.resolved_at) <= until)).all()
        # A policy's own recovery is replayed by the policy; only people's resolutions are operator events.
        automatic = set(session.exec(select(TimelineEntry.incident_id).where(
            col(TimelineEntry.incident_id).in_([i for i, _, _ in resolved]), TimelineEntry.kind == "status",
            TimelineEntry.author == "watchtower")).all()) if resolved else set()
        events = [OperatorEvent(at, "resolve", key or "") for i, key, at in resolved if at and i not in automatic]
        events += [OperatorEvent(at, action) for action, at in session.exec(  # type: ignore[arg-type]
            select(ActionRun.action, ActionRun.created_at).where(
                ActionRun.model_id == model_id, col(ActionRun.action).in_(("restore", "resume")),
                col(ActionRun.created_at) >= since, col(ActionRun.created_at) <= until)).all()]
        decisions = [LiveDecision(d.at, d.monitor_id, tuple(d.fired), tuple(d.actions), d.incident_id)
                     for d in session.exec(select(PolicyDecision).where(
                         PolicyDecision.model_id == model_id, col(PolicyDecision.at) >= since,
                         col(PolicyDecision.at) <= until).order_by(col(PolicyDecision.at), col(PolicyDecision.id)))]
        return Record(model_id, model_name, since, until, monitors, _passes(session, in_period), warmup,
                      events, decisions)

    return load


def _passes(session: Session, where: tuple[Any, ...]) -> list[StoredPass]:
    """The check runs matching `where`, with their results, grouped into passes (oldest first)."""
    findings: dict[int, list[Finding]] = {}
    for r, detector, engine in session.exec(select(CheckResult, CheckRun.detector, CheckRun.engine)
                                            .join(CheckRun).where(*where).order_by(col(CheckResult.id))):
        findings.setdefault(r.check_run_id, []).append(Finding(
            detector, engine, r.test, r.feature, r.score, r.threshold, r.breached, r.direction,  # type: ignore[arg-type]
            r.statistic, r.p_value, r.extra, r.threshold_source))
    grouped: dict[object, list[CheckRun]] = {}
    for run in session.exec(select(CheckRun).where(*where).order_by(col(CheckRun.created_at), col(CheckRun.id))):
        # A pass's runs share its decision; runs stored before decisions existed share monitor and time.
        grouped.setdefault(run.decision_id or (run.monitor_id, run.created_at), []).append(run)
    return [StoredPass(runs[0].created_at, runs[0].monitor_id, tuple(
        DetectorOutcome(run.id or 0, run.detector, run.status, findings.get(run.id or 0, [])) for run in runs))
        for runs in grouped.values()]


def backtest_model(session: Session, model: MonitoredModel, candidate: Policy | None, since: datetime | None,
                   until: datetime | None, now: datetime) -> BacktestResult:
    """Backtest a candidate (default: the model's current policy) over a period of the model's stored passes."""
    assert model.id is not None
    start, end = period(since, until, now)
    current, scope = effective_policy(session, model.id)
    return backtest(candidate or current, current, scope, loader(session, model.id, model.name, start, end))
