"""The process's scheduler: APScheduler 3 runs the jobs, a supervisor thread holds the lease and watches it.

APScheduler 3 cannot share a job store between processes (its FAQ: "You can't"), so jobs live in memory and
are rebuilt from the `monitor` table; one replica leads through the lease (`lease.py`) and only the leader's
scheduler runs. Every run claims its slot (`slots.py`), so an overlap of two leaders still runs it once. The
supervisor thread renews the lease, steps down when it cannot, re-syncs the jobs, and restarts the
APScheduler thread if it ever dies; no exception ends either thread.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlmodel import Session

from watchtower import heap
from watchtower.clock import utcnow
from watchtower.runtime import Runtime
from watchtower.scheduler import lease, slots
from watchtower.scheduler.monitors import scheduled_monitors
from watchtower.scheduler.slots import job_id

log = logging.getLogger(__name__)
JOB_DEFAULTS = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
SYNC_EVERY_S = 30


class SlotTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at the start of every slot (multiples of the interval since the Unix epoch), so replicas agree.

    APScheduler's IntervalTrigger counts from the previous run, so one run out of step (a catch-up run at
    start) would shift every later one; this trigger always returns to the slot boundaries.
    """

    def __init__(self, interval_s: int) -> None:
        self.interval = timedelta(seconds=interval_s)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        seconds = int(self.interval.total_seconds())
        if previous_fire_time is None:
            at = -(-now.timestamp() // seconds) * seconds  # the first boundary at or after now
        else:
            at = slots.slot_of(previous_fire_time.timestamp(), seconds) + seconds
        return datetime.fromtimestamp(at, UTC)


class JobFailed(Exception):
    """A job body that finished without raising but did not do its work (a monitor pass that crashed)."""


class MonitorScheduler:
    """Runs the monitor, outbox, threshold and compaction jobs of this process while it leads."""

    def __init__(self, runtime: Runtime, holder: str | None = None) -> None:
        self.runtime = runtime
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.epoch: int | None = None  # set while this process holds the lease
        self._renewed_at = 0.0
        self._synced_at = 0.0
        self._stop = threading.Event()
        self._lock = threading.RLock()  # the supervisor thread and API requests both sync jobs
        self.scheduler = self._build()
        self._thread = threading.Thread(target=self._supervise, name="watchtower-supervisor", daemon=True)

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    def start(self) -> None:
        """Start paused, try for the lease at once, then keep renewing it in the background."""
        self.scheduler.start(paused=True)
        self.tick()
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the jobs, wait for running ones, and hand the lease over."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.runtime.settings.lease_renew_s + 5)
        self.scheduler.shutdown(wait=True)
        if self.epoch is not None:
            try:
                lease.release(self.runtime.engine, self.holder, self.epoch, now=time.time())
            except Exception:  # shutting down anyway: the lease expires on its own
                log.exception("could not release the scheduler lease")
            self._set_epoch(None)

    def tick(self, now: float | None = None) -> None:
        """One supervisor step: hold or give up the lease, keep the jobs in sync, restart a dead scheduler."""
        now = time.time() if now is None else now
        settings = self.runtime.settings
        try:
            epoch = lease.hold(self.runtime.engine, self.holder, self.epoch, ttl_s=settings.lease_ttl_s, now=now)
            self._renewed_at = now
        except Exception:  # the database is down: keep leading only while our lease cannot have expired
            log.exception("could not renew the scheduler lease")
            self.runtime.metrics.lease_failures.inc()
            epoch = self.epoch if now - self._renewed_at < settings.lease_ttl_s else None
        self._set_epoch(epoch)
        with self._lock:
            if not self.scheduler.running or self.scheduler._thread is None or not self.scheduler._thread.is_alive():
                self._restart()
            if self.leading:
                self.scheduler.resume()
            else:
                self.scheduler.pause()
        if self.leading and now - self._synced_at >= SYNC_EVERY_S:
            self.sync_jobs()
            self._synced_at = now

    def sync_jobs(self) -> None:
        """Make the job list match the monitors in the database (add, reschedule, remove)."""
        with Session(self.runtime.engine) as session:
            wanted = {job_id(m, n): (m, n, interval) for m, n, interval in scheduled_monitors(session)}
        with self._lock:
            for job in self.scheduler.get_jobs():
                if job.id.startswith("monitor:") and job.id not in wanted:
                    job.remove()
            for jid, (model, monitor, interval) in wanted.items():
                job = self.scheduler.get_job(jid)
                if job is None:
                    # Run at once: a slot that already ran (before a restart, or on another replica) is skipped.
                    self._add(jid, interval, self._monitor_body(model, monitor), next_run_time=utcnow())
                    log.info("scheduled %s every %ss", jid, interval)
                elif job.trigger.interval.total_seconds() != interval:
                    job.reschedule(SlotTrigger(interval))
        if self.leading:
            try:
                slots.prune(self.runtime.engine, keep_jobs=set(wanted) | set(self._system_jobs()),
                            older_than=slots.history_cutoff(utcnow(), self.runtime.settings.job_history_days))
            except Exception:
                log.exception("could not prune old job runs")

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

    def run_slot(self, job: str, interval_s: int, body: Callable[[], None], now: float | None = None) -> str:
        """Run `body` for the current slot of `job` if this process leads and nobody ran the slot yet.

        Never raises: an error is logged, counted and written to the heartbeat, and the next slot runs as usual.
        Returns the outcome: ok | error | slot_taken | not_leader.
        """
        now = time.time() if now is None else now
        engine, epoch = self.runtime.engine, self.epoch
        if epoch is None:
            return self._count(job, "not_leader")
        slot, started = slots.slot_of(now, interval_s), datetime.fromtimestamp(now, UTC)
        try:
            if not slots.claim(engine, job, slot, holder=self.holder, epoch=epoch, at=started):
                return self._count(job, "slot_taken")
            slots.beat_start(engine, job, interval_s=interval_s, holder=self.holder, at=started)
        except Exception as exc:  # most likely the database: try the next slot
            log.exception("job %s could not claim its slot", job)
            self._record_failure(job, interval_s, f"claim failed: {type(exc).__name__}: {exc}")
            return self._count(job, "error")
        error = None
        try:
            body()
        except Exception as exc:
            log.exception("job %s failed", job)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        heap.settle(f"job:{job.split(':', 1)[0]}")  # the first monitor pass imports pandas and the detectors
        try:
            slots.settle(engine, job, slot, interval_s=interval_s, holder=self.holder, at=utcnow(), error=error)
        except Exception as exc:
            log.exception("job %s: could not record its outcome", job)
            self._record_failure(job, interval_s, f"settle failed: {type(exc).__name__}: {exc}")
            error = error or "settle failed"
        return self._count(job, "error" if error else "ok")

    def _record_failure(self, job: str, interval_s: int, error: str) -> None:
        try:
            slots.beat_failure(self.runtime.engine, job, interval_s=interval_s, holder=self.holder,
                               at=utcnow(), error=error[:2000])
        except Exception:  # the database is what failed; the log line and the counter remain
            log.warning("job %s: heartbeat not written either", job)

    def _count(self, job: str, outcome: str) -> str:
        self.runtime.metrics.job_runs.labels(job, outcome).inc()
        return outcome

    def _set_epoch(self, epoch: int | None) -> None:
        if epoch != self.epoch:
            log.warning("scheduler %s: %s", self.holder,
                        f"leading with epoch {epoch}" if epoch is not None else "no longer leading")
            if epoch is not None:
                self._synced_at = 0.0  # a new leader rebuilds its jobs at once
        self.epoch = epoch
        self.runtime.metrics.scheduler_leader.set(1.0 if epoch is not None else 0.0)

    def _supervise(self) -> None:
        while not self._stop.wait(self.runtime.settings.lease_renew_s):
            try:
                self.tick()
            except Exception:  # never let the supervisor die: it is what keeps everything else alive
                log.exception("scheduler supervisor step failed")

    def _system_jobs(self) -> dict[str, tuple[int, Callable[[], None]]]:
        # Each job imports what it runs when it first runs, in the scheduler's thread: not while `serve` starts.
        s, runtime = self.runtime.settings, self.runtime

        def outbox() -> None:
            from watchtower.delivery import deliver_outbox

            deliver_outbox(runtime)

        def thresholds() -> None:
            from watchtower.learned_thresholds import refit_all

            refit_all(runtime)

        def compact() -> None:
            # pandas and pyarrow load with the first compaction, not while `serve` starts
            from watchtower.events.segments import compact_all

            compact_all(runtime.engine)

        def escalations() -> None:
            from alerts.oncall.escalation import advance_escalations

            advance_escalations(runtime, utcnow())

        return {"outbox": (s.outbox_interval_s, outbox), "thresholds": (s.threshold_refit_s, thresholds),
                "compact": (s.compact_interval_s, compact), "escalations": (s.escalation_interval_s, escalations)}

    def _build(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")
        for name, (interval, body) in self._system_jobs().items():
            self._add(name, interval, body, scheduler=scheduler)
        return scheduler

    def _add(self, jid: str, interval: int, body: Callable[[], None], *, scheduler: BackgroundScheduler | None = None,
             next_run_time: datetime | None = None) -> None:
        extra = {"next_run_time": next_run_time} if next_run_time else {}
        (scheduler or self.scheduler).add_job(
            self.run_slot, SlotTrigger(interval), id=jid,
            args=[jid, interval, body], replace_existing=True, **extra)

    def _monitor_body(self, model: str, monitor: str) -> Callable[[], None]:
        def body() -> None:
            from watchtower.monitor import run_monitor

            result = run_monitor(self.runtime, model, monitor)
            if result.status == "error":
                raise JobFailed(f"monitor pass of {model}/{monitor} crashed; see the log")
        return body

    def _restart(self) -> None:
        """Replace a scheduler whose thread died with a fresh one holding the same jobs."""
        if self.scheduler.running:
            log.error("the APScheduler thread died; starting a new scheduler")
            self.runtime.metrics.scheduler_restarts.inc()
            try:
                self.scheduler.shutdown(wait=False)
            except Exception:
                log.exception("shutting the dead scheduler down failed")
        self.scheduler = self._build()
        self.scheduler.start(paused=True)
        self._synced_at = 0.0
