"""APScheduler 3: one persisted interval job per model monitor, plus outbox delivery, threshold re-fits and
event-segment compaction.

Jobs live in the database (SQLAlchemyJobStore), so a restart resumes them where they were.
Persisted jobs name their function by import path and carry only strings, so the job
functions find the process's Runtime here; it is set by MonitorScheduler.start().
"""

import logging

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session, select

from watchtower.delivery import deliver_outbox
from watchtower.events.segments import compact_all
from watchtower.learned_thresholds import refit_all
from watchtower.monitor import run_monitor
from watchtower.registry.models import Monitor, MonitoredModel
from watchtower.runtime import Runtime

log = logging.getLogger(__name__)
_runtime: Runtime | None = None
JOB_DEFAULTS = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}


def monitor_job(model: str, monitor: str) -> None:
    """Scheduled entry point of one monitor."""
    assert _runtime is not None, "MonitorScheduler.start() sets the runtime"
    run_monitor(_runtime, model, monitor)


def outbox_job() -> None:
    """Scheduled delivery of Slack and webhook messages."""
    assert _runtime is not None
    deliver_outbox(_runtime)


def thresholds_job() -> None:
    """Scheduled re-fit of learned thresholds."""
    assert _runtime is not None
    refit_all(_runtime)


def compact_job() -> None:
    """Scheduled merge of small event segments, so windows decode few of them."""
    assert _runtime is not None
    compact_all(_runtime.engine)


def sync_job() -> None:
    """Pick up monitors registered through another process or replica."""
    if _scheduler is not None:
        _scheduler.sync_jobs()


def job_id(model: str, monitor: str) -> str:
    return f"monitor:{model}:{monitor}"


class MonitorScheduler:
    """Owns the BackgroundScheduler of this process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=runtime.engine, tablename="apscheduler_jobs")},
            job_defaults=JOB_DEFAULTS, timezone="UTC")

    def start(self) -> None:
        """Resume persisted jobs and add any that are missing."""
        global _runtime, _scheduler
        _runtime, _scheduler = self.runtime, self
        self.scheduler.start()
        self.sync_jobs()
        self.scheduler.add_job("watchtower.scheduler:outbox_job", "interval", id="outbox",
                               seconds=self.runtime.settings.outbox_interval_s, replace_existing=True)
        self.scheduler.add_job("watchtower.scheduler:sync_job", "interval", id="sync", seconds=30,
                               replace_existing=True)
        self.scheduler.add_job("watchtower.scheduler:thresholds_job", "interval", id="thresholds",
                               seconds=self.runtime.settings.threshold_refit_s, replace_existing=True)
        self.scheduler.add_job("watchtower.scheduler:compact_job", "interval", id="compact",
                               seconds=self.runtime.settings.compact_interval_s, replace_existing=True)

    def sync_jobs(self) -> None:
        """Make the job list match the monitors in the database (add, reschedule, remove)."""
        with Session(self.runtime.engine) as session:
            rows = session.exec(select(MonitoredModel.name, Monitor.name, Monitor.interval_s).join(Monitor)).all()
        wanted = {job_id(model, monitor): (model, monitor, interval) for model, monitor, interval in rows}
        for job in self.scheduler.get_jobs():
            if job.id.startswith("monitor:") and job.id not in wanted:
                job.remove()
        for jid, (model, monitor, interval) in wanted.items():
            job = self.scheduler.get_job(jid)
            if job is None:
                self.scheduler.add_job("watchtower.scheduler:monitor_job", "interval", id=jid,
                                       args=[model, monitor], seconds=interval)
                log.info("scheduled %s every %ss", jid, interval)
            elif job.trigger.interval.total_seconds() != interval:
                job.reschedule("interval", seconds=interval)

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

    def shutdown(self) -> None:
        global _runtime, _scheduler
        self.scheduler.shutdown(wait=True)
        _runtime, _scheduler = None, None


_scheduler: MonitorScheduler | None = None
