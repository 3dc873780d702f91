"""Learned thresholds, service side: fit them from a monitor's stored healthy runs or its reference chunks,
store them, and hand them to the monitor pass. The statistics are in detectors.thresholds (pure)."""

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from detectors import registry
from detectors.base import Finding, InsufficientData, Window
from detectors.thresholds import FittedThreshold as Fitted
from detectors.thresholds import Key, ScoreHistory, StaticThreshold, learn, parse_spec
from watchtower.checks.models import CheckResult, CheckRun, FittedThreshold
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.registry.models import Monitor, MonitoredModel
from watchtower.registry.service import schema_of
from watchtower.runtime import Runtime

log = logging.getLogger(__name__)
HISTORY_RUNS = 500  # healthy runs read per detector when the spec sets no max_history
ANY: Key = ("*", "*")  # stored when a detector has no healthy history at all: says so on every finding


def learned_detectors(monitor: Monitor) -> list[str]:
    """Names of the monitor's detectors whose threshold is learned."""
    return [str(d["name"]) for d in monitor.detectors
            if not isinstance(parse_spec(d.get("threshold")), StaticThreshold)]


def refit_all(runtime: Runtime, now: datetime | None = None) -> int:
    """Re-fit every learned threshold of every monitor; one monitor failing does not stop the others."""
    with Session(runtime.engine) as session:
        pairs = session.exec(select(MonitoredModel.name, Monitor.name).join(Monitor)
                             .where(col(MonitoredModel.archived_at).is_(None))).all()  # archived: not monitored
    fitted = 0
    for model, monitor in pairs:
        try:
            fitted += refit(runtime, model, monitor, now)
        except Exception:  # a broken model must not block the others' thresholds
            log.exception("refitting thresholds of %s/%s failed", model, monitor)
            runtime.metrics.monitor_failures.labels(model).inc()
    return fitted


def refit(runtime: Runtime, model_name: str, monitor_name: str, now: datetime | None = None) -> int:
    """Fit the learned thresholds of one monitor and replace the stored ones; return how many were fitted."""
    now = now or utcnow()
    rows: list[FittedThreshold] = []
    with Session(runtime.engine) as session:
        model = session.exec(select(MonitoredModel).where(MonitoredModel.name == model_name)).one()
        monitor = session.exec(select(Monitor).where(Monitor.model_id == model.id,
                                                     Monitor.name == monitor_name)).one()
        assert monitor.id is not None
        names = learned_detectors(monitor)
        if not names:
            return 0
        reference, profile = runtime.references.get(session, model)
        window = Window(reference, reference.iloc[:0], schema_of(model), model.task, profile)  # type: ignore
        for spec in monitor.detectors:
            threshold = parse_spec(spec.get("threshold"))
            if isinstance(threshold, StaticThreshold):
                continue
            name = str(spec["name"])
            history = (None if threshold.source == "reference_chunks"
                       else healthy_history(session, monitor.id, name, threshold.max_history or HISTORY_RUNS,
                                            since=monitor.reprofiled_at))
            try:
                fitted = learn(threshold, registry.build(name, dict(spec.get("params") or {})), window, history)
            except InsufficientData as exc:
                log.warning("no learned threshold for %s on %s/%s: %s", name, model_name, monitor_name, exc)
                continue
            if not fitted:  # no healthy run yet: nothing to learn from, and the first passes must say so
                fitted = {ANY: Fitted(value=None, source=f"static (only 0 healthy scores, need "
                                      f"{threshold.min_samples})", n=0, direction="above")}
            rows += [FittedThreshold(monitor_id=monitor.id, detector=name, test=test, feature=feature,
                                     value=f.value, source=f.source[:300], n=f.n, direction=f.direction,
                                     fitted_at=now) for (test, feature), f in fitted.items()]
    with Session(writer(runtime.engine)) as session:
        session.execute(delete(FittedThreshold).where(col(FittedThreshold.monitor_id) == monitor.id,
                                                      col(FittedThreshold.detector).in_(names)))
        session.add_all(rows)
        session.commit()
    return len(rows)


def healthy_history(session: Session, monitor_id: int, detector: str, runs: int,
                    since: datetime | None = None) -> dict[Key, ScoreHistory]:
    """Scores of the detector's newest `runs` runs that did not breach, oldest first, by (test, feature);
    only runs from `since` on (scores against an earlier reference do not count)."""
    newest = (select(CheckRun.id).where(CheckRun.monitor_id == monitor_id, CheckRun.detector == detector,
                                        CheckRun.status == "ok")
              .order_by(col(CheckRun.created_at).desc(), col(CheckRun.id).desc()).limit(runs))
    if since is not None:
        newest = newest.where(col(CheckRun.created_at) >= since)
    rows = session.exec(
        select(CheckResult.test, CheckResult.feature, CheckResult.score, CheckResult.direction)
        .join(CheckRun, col(CheckRun.id) == col(CheckResult.check_run_id))
        .where(col(CheckResult.check_run_id).in_(newest.scalar_subquery()))
        .order_by(col(CheckRun.created_at), col(CheckRun.id))).all()
    scores: dict[Key, list[float]] = defaultdict(list)
    directions: dict[Key, str] = {}
    for test, feature, score, direction in rows:
        scores[test, feature].append(score)
        directions[test, feature] = direction
    return {key: ScoreHistory(directions[key], values) for key, values in scores.items()}  # type: ignore[arg-type]


def for_findings(findings: list[Finding], fitted: dict[Key, Fitted]) -> dict[Key, Fitted]:
    """The fitted thresholds keyed for these findings, the ANY marker standing in for keys not fitted yet."""
    marker = fitted.get(ANY)
    if marker is None:
        return fitted
    return {(f.test, f.feature): marker.model_copy(update={"direction": f.direction}) for f in findings} | fitted


def stored(session: Session, monitor_id: int, detector: str) -> dict[Key, Fitted]:
    """The fitted thresholds of one detector of a monitor."""
    rows = session.exec(select(FittedThreshold).where(FittedThreshold.monitor_id == monitor_id,
                                                      FittedThreshold.detector == detector)).all()
    return {(r.test, r.feature): Fitted(value=r.value, source=r.source, n=r.n, direction=r.direction)  # type: ignore
            for r in rows}


def missing(session: Session, monitor: Monitor) -> bool:
    """Whether a learned detector of the monitor has never been fitted (the first pass fits it)."""
    names = learned_detectors(monitor)
    if not names:
        return False
    fitted = set(session.exec(select(FittedThreshold.detector).where(
        FittedThreshold.monitor_id == monitor.id, col(FittedThreshold.detector).in_(names))).all())
    return bool(set(names) - fitted)
