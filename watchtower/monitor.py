"""One monitor pass per model: window -> detectors -> policy -> actions. Never raises for one bad model.

The check itself (watchtower/monitor_check.py, with the detectors, the checks' tables and the response policy),
the window, pandas and the diagnosis are imported by the first pass that has a model to check: `watchtower
monitor` on an empty database stays light.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from watchtower.clock import utcnow
from watchtower.registry.models import Monitor, MonitoredModel
from watchtower.runtime import Runtime

if TYPE_CHECKING:
    from watchtower.policy.breach import Breach, DetectorOutcome
    from watchtower.policy.decide import Plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassResult:
    """What one model+monitor pass concluded."""

    model: str
    monitor: str
    status: str  # ok | breached | insufficient_data | error | archived
    outcomes: list[DetectorOutcome]
    breach: Breach | None = None
    incident_id: int | None = None  # the incident this pass opened or added to
    plan: Plan | None = None  # what the response policy made of it


def run_monitor_pass(runtime: Runtime, now: datetime | None = None) -> list[PassResult]:
    """Run every monitor of every model once."""
    with Session(runtime.engine) as session:
        pairs = session.exec(select(MonitoredModel.name, Monitor.name).join(Monitor)
                             .where(col(MonitoredModel.archived_at).is_(None))  # archived: not monitored
                             .order_by(col(MonitoredModel.id), col(Monitor.id))).all()
    return [run_monitor(runtime, model, monitor, now) for model, monitor in pairs]


def run_monitor(runtime: Runtime, model_name: str, monitor_name: str, now: datetime | None = None) -> PassResult:
    """One pass of one model's monitor; a crash is logged, counted and reported as status 'error'."""
    from watchtower.monitor_check import check  # ~35 ms of imports, by the first model to check

    now = now or utcnow()
    started = time.perf_counter()
    try:
        return check(runtime, model_name, monitor_name, now)
    except Exception:  # the scheduler loop must go on for every other model
        log.exception("monitor pass of %s/%s crashed", model_name, monitor_name)
        runtime.metrics.monitor_failures.labels(model_name).inc()
        return PassResult(model_name, monitor_name, "error", [])
    finally:
        runtime.metrics.monitor_pass.labels(model_name).observe(time.perf_counter() - started)
