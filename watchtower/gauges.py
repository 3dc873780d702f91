"""Database state read at scrape time for the gauges in alerts.metrics.STATE_GAUGES."""

import threading
from datetime import datetime
from time import monotonic

from sqlalchemy import func
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.oncall.models import Schedule
from alerts.oncall.schedules import shift_now
from alerts.outbox.models import KINDS, OutboxMessage, OutboxStatus
from postmortems.analytics import summarize
from postmortems.models import ACTIVE, Incident
from postmortems.taxonomy import load_index
from watchtower.checks.models import CheckResult, CheckRun
from watchtower.clock import utcnow
from watchtower.policy import holds
from watchtower.registry.models import Monitor, MonitoredModel, Pipeline, Role
from watchtower.scheduler.models import JobHeartbeat

Samples = dict[str, list[tuple[dict[str, str], float]]]


class StateReader:
    """The state gauges, read from the database when Prometheus scrapes.

    The incident analytics group every incident (about 1 s at 100k incidents) and change slowly, so they
    are re-read at most every `analytics_ttl_s`, as Grafana OnCall caches its metrics; the operational
    gauges (serving role, paused pipelines, open incidents, latest checks) are read on every scrape.
    """

    def __init__(self, engine: Engine, analytics_ttl_s: float) -> None:
        self.engine, self.analytics_ttl_s = engine, analytics_ttl_s
        self._analytics: Samples = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()  # concurrent scrapes: one re-reads, the others wait for it

    def __call__(self) -> Samples:
        return read_operational(self.engine) | self._analytics_snapshot()

    def _analytics_snapshot(self) -> Samples:
        with self._lock:
            if self._read_at is None or monotonic() - self._read_at >= self.analytics_ttl_s:
                self._analytics = read_analytics(self.engine)
                self._read_at = monotonic()
            return self._analytics


def read_operational(engine: Engine, now: datetime | None = None) -> Samples:
    """What is serving, paused, held, open, breached and undelivered now, and who is on call."""
    now = now or utcnow()
    with Session(engine) as session:
        state = read_outbox(session, now) | read_schedules(session, now)
        models = session.exec(select(MonitoredModel.id, MonitoredModel.name, MonitoredModel.active_role)).all()
        names = {model_id: name for model_id, name, _ in models}
        state |= {
            "watchtower_active_version": [({"model": name, "role": role.value}, float(active == role.value))
                                          for _, name, active in models for role in Role],
            "watchtower_pipeline_paused": [({"pipeline": name}, float(paused)) for name, paused in
                                           session.exec(select(Pipeline.name, Pipeline.paused)).all()],
        }
        open_counts = dict(session.exec(
            select(Incident.model_id, func.count()).where(col(Incident.status).in_([s.value for s in ACTIVE]))
            .group_by(col(Incident.model_id))).all())
        state["watchtower_open_incidents"] = [({"model": name}, float(open_counts.get(model_id, 0)))
                                              for model_id, name in names.items()]
        latest = (select(func.max(CheckRun.id)).where(CheckRun.status.in_(("ok", "breached")))  # type: ignore[attr-defined]
                  .group_by(col(CheckRun.model_id), col(CheckRun.monitor_id), col(CheckRun.detector)))
        runs = session.execute(sa_select(col(CheckRun.id), col(CheckRun.model_id), col(Monitor.name),
                                         col(CheckRun.detector), col(CheckRun.status))
                               .join(Monitor).where(col(CheckRun.id).in_(latest))).all()
        state["watchtower_check_breached"] = [
            ({"model": names[m], "monitor": mon, "detector": d}, float(s == "breached")) for _, m, mon, d, s in runs]
        run_labels = {run_id: (names[m], mon, d) for run_id, m, mon, d, _ in runs if d.endswith("_drift")}
        results = session.exec(select(CheckResult.check_run_id, CheckResult.feature, CheckResult.score)
                               .where(col(CheckResult.check_run_id).in_(list(run_labels)))).all()
        state["watchtower_drift_score"] = [
            ({"model": run_labels[r][0], "monitor": run_labels[r][1], "detector": run_labels[r][2],
              "feature": feature}, score) for r, feature, score in results]
        held = {(hold.model_id, hold.action) for hold, _ in holds.holds_of(session, None, now, active_only=True)}
        state["watchtower_action_held"] = [({"model": name, "action": action}, float((model_id, action) in held))
                                           for model_id, name in names.items() for action in holds.HOLDABLE]
        state |= _heartbeats(session)
    return state


def _heartbeats(session: Session) -> Samples:
    """Each job's heartbeat, from the database: the same on every replica, whichever of them leads."""
    beats = session.exec(select(JobHeartbeat)).all()
    return {
        "watchtower_job_last_success_timestamp_seconds": [
            ({"job": b.job}, b.last_success_at.timestamp()) for b in beats if b.last_success_at],
        "watchtower_job_last_error_timestamp_seconds": [
            ({"job": b.job}, b.last_error_at.timestamp()) for b in beats if b.last_error_at],
        "watchtower_job_interval_seconds": [({"job": b.job}, float(b.interval_s)) for b in beats],
        "watchtower_job_consecutive_failures": [({"job": b.job}, float(b.consecutive_failures)) for b in beats],
    }


def read_schedules(session: Session, now: datetime) -> Samples:
    """1 for each schedule with someone on call now, 0 for one in a gap (a gap is an alert of its own)."""
    return {"watchtower_schedule_oncall": [({"schedule": s.name}, float(shift_now(session, s, now) is not None))
                                           for s in session.exec(select(Schedule)).all()]}


def read_outbox(session: Session, now: datetime) -> Samples:
    """Messages per kind and status (every known pair, zeros included, so alert rules see 0, not nothing),
    and how long the oldest undelivered one has waited."""
    counts = {(kind, status): n for kind, status, n in session.exec(
        select(OutboxMessage.kind, OutboxMessage.status, func.count())
        .group_by(col(OutboxMessage.kind), col(OutboxMessage.status))).all()}
    kinds = sorted(set(KINDS) | {kind for kind, _ in counts})
    waiting = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
    oldest = session.exec(select(func.min(OutboxMessage.created_at))
                          .where(col(OutboxMessage.status).in_(waiting))).one()
    return {
        "watchtower_outbox_messages": [({"kind": kind, "status": status.value},
                                        float(counts.get((kind, status.value), 0)))
                                       for kind in kinds for status in OutboxStatus],
        "watchtower_outbox_oldest_pending_age_seconds": [
            ({}, max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)],
    }


def read_analytics(engine: Engine) -> Samples:
    """Incidents by taxonomy category, their mean stage durations, and the ML share."""
    with Session(engine) as session:
        summary = summarize(session, load_index(session))
    return {
        "watchtower_incidents_by_category": [({"category": c["category"]}, float(c["incidents"]))
                                             for c in summary["by_category"]],
        "watchtower_incident_mean_seconds": [
            ({"category": c["category"], "stage": stage}, float(c[key]))
            for c in summary["by_category"]
            for stage, key in (("detect", "mttd_s"), ("acknowledge", "mtta_s"), ("mitigate", "mttm_s"),
                               ("resolve", "mttr_s")) if c[key] is not None],
        "watchtower_incidents_by_ml_axis": [({"axis": axis}, float(n)) for axis, n in summary["ml_share"].items()],
    }
