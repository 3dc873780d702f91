"""One check of one model's monitor: its window, its detectors, the response policy's decision and actions,
all stored in one transaction (watchtower.monitor.run_monitor calls it and turns a crash into status 'error')."""

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlmodel import Session, select

from detectors import registry
from detectors.base import TS, Finding, InsufficientData, Window
from detectors.thresholds import FittedThreshold, Key, apply
from watchtower.checks.models import CheckResult, CheckRun
from watchtower.db import writer
from watchtower.monitor import PassResult
from watchtower.policy import decide, store
from watchtower.policy.breach import Breach, DetectorOutcome, group_key
from watchtower.policy.rules import Policy
from watchtower.registry.models import Monitor, MonitoredModel
from watchtower.runtime import Runtime

log = logging.getLogger(__name__)


def check(runtime: Runtime, model_name: str, monitor_name: str, now: datetime) -> PassResult:
    """The pass of one model's monitor at `now`; raises what goes wrong."""
    from watchtower import learned_thresholds  # with the windows: loaded by a pass that has a model to check
    from watchtower.policy.respond import respond
    from watchtower.windows import TICK, build_window

    with Session(runtime.engine) as session:
        monitor, archived = session.exec(select(Monitor, MonitoredModel.archived_at).join(MonitoredModel).where(
            MonitoredModel.name == model_name, Monitor.name == monitor_name)).one()
        if archived is not None:  # a job scheduled before the model was archived: nothing to check
            return PassResult(model_name, monitor_name, "archived", [])
        unfitted = learned_thresholds.missing(session, monitor)
    if unfitted:  # the first pass fits; afterwards the schedule re-fits
        learned_thresholds.refit(runtime, model_name, monitor_name, now)
    with Session(runtime.engine) as session:
        model = session.exec(select(MonitoredModel).where(MonitoredModel.name == model_name)).one()
        monitor = session.exec(select(Monitor).where(Monitor.model_id == model.id,
                                                     Monitor.name == monitor_name)).one()
        span = build_window(session, model, monitor, now, runtime.references, runtime.settings.profile_mode_events)
        fitted = {name: learned_thresholds.stored(session, cast(int, monitor.id), name)
                  for name in learned_thresholds.learned_detectors(monitor)}
    assert model.id is not None and monitor.id is not None
    window, start, end = span.window, span.start, span.end
    enough = window.events >= monitor.min_events
    results = [(spec, "insufficient_data", [], span.incomplete) if span.incomplete
               else _detect(runtime, model_name, spec, window, fitted.get(str(spec["name"])))
               if enough or not registry.needs_events(str(spec["name"]))
               else (spec, "insufficient_data", [], f"{window.events} events, need {monitor.min_events}")
               for spec in monitor.detectors]
    numbers = (_measure(runtime, model, window, start, end) if any(status == "breached" for _, status, _, _ in results)
               else {})

    with Session(writer(runtime.engine)) as session:
        outcomes, runs = [], []
        for spec, status, findings, error in results:
            engine = findings[0].engine if findings else registry.engine_of(str(spec["name"]))
            run = CheckRun(model_id=model.id, monitor_id=monitor.id, detector=spec["name"], engine=engine,
                           params=spec.get("params", {}),
                           status=status, window_start=start, window_end=min(end, now),
                           n_reference=window.reference_rows,
                           n_current=window.events, error=error, created_at=now,
                           guard_item_id=_guard_item(spec))
            session.add(run)
            session.flush()
            runs.append(run)
            assert run.id is not None
            session.add_all([_result(run.id, f) for f in findings])
            outcomes.append(DetectorOutcome(run.id, spec["name"], status, findings))
        if monitor.window_events and not span.incomplete:  # this block is checked: the next pass takes the next
            stored = session.get(Monitor, monitor.id)
            assert stored is not None
            stored.cursor_ts = end - TICK
            session.add(stored)
        if any(o.status == "breached" for o in outcomes):
            runtime.metrics.breaches.labels(model.name, monitor.name).inc()
        policy, scope = store.effective_policy(session, model.id)
        plan = decide.plan(policy, outcomes, store.history(session, monitor.id, _history_needed(policy)))
        breach = Breach(model.id, model.name, monitor.id, monitor.name, start, min(end, now), outcomes,
                        first_event_at=span.first_served or _first_served(window), plan=plan,
                        group_key=group_key(policy.grouping, model.id, monitor.id), diagnosis=numbers)
        decision = respond(session, runtime, breach, policy, scope, now)
        for run in runs:
            run.decision_id = decision.id
            session.add(run)
        session.commit()
        incident_id = decision.incident_id if "open_incident" in plan.actions else None
    waiting = _waiting(results)
    breached = any(o.status == "breached" for o in outcomes)
    status = "breached" if breached else ("insufficient_data" if waiting else "ok")
    return PassResult(model.name, monitor.name, status, outcomes, breach if breached else None, incident_id, plan)


Detected = tuple[dict[str, object], str, list[Finding], str | None]


def _waiting(results: list[Detected]) -> bool:
    """A pass waits for data while every detector that needs events waits: a clean schema check on an empty
    window (it needs none) does not make the pass "ok". A monitor made only of such detectors waits when they all do."""
    statuses = [status for spec, status, _, _ in results if registry.needs_events(str(spec["name"]))]
    statuses = statuses or [status for _, status, _, _ in results]
    return all(status == "insufficient_data" for status in statuses)


def _detect(runtime: Runtime, model_name: str, spec: dict[str, object], window: Window,
            fitted: dict[Key, FittedThreshold] | None) -> Detected:
    from watchtower import learned_thresholds

    try:
        detector = registry.build(str(spec["name"]), dict(spec.get("params") or {}))  # type: ignore[call-overload]
        findings = detector.run(window)
        if fitted is not None:
            findings = apply(findings, learned_thresholds.for_findings(findings, fitted))
    except InsufficientData as exc:
        return spec, "insufficient_data", [], str(exc)
    except Exception as exc:  # a broken detector is recorded; the others still run
        log.exception("detector %s failed on %s", spec.get("name"), model_name)
        runtime.metrics.monitor_failures.labels(model_name).inc()
        return spec, "error", [], f"{type(exc).__name__}: {exc}"[:2000]
    return spec, "breached" if any(f.breached for f in findings) else "ok", findings, None


def _measure(runtime: Runtime, model: MonitoredModel, window: Window, start: datetime,
             end: datetime) -> dict[str, Any]:
    """The numbers the breach's diagnosis needs; a failure leaves them out (the breach still acts), logged.
    A profile-mode window holds few or no rows: the numbers read a sample of its events (SAMPLE_ROWS)."""
    from postmortems.diagnosis.numbers import SAMPLE_ROWS, measure
    from watchtower.events.store import sample_window

    try:
        if window.sketched is not None:
            with Session(runtime.engine) as session:
                window = replace(window, current=sample_window(session, model, start, end, SAMPLE_ROWS))
        return measure(window)
    except Exception as exc:  # the incident must still open: a diagnosis is a help, not a gate
        log.exception("measuring the breach window of %s for its diagnosis failed", model.name)
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def _guard_item(spec: dict[str, object]) -> int | None:
    """The postmortem action item that added this detector as a guard, if it is one."""
    guard = spec.get("guard")
    return int(guard["action_item_id"]) if isinstance(guard, dict) else None


def _history_needed(policy: Policy) -> int:
    """How many earlier passes confirmation looks at: the largest n of any rule, minus this pass."""
    return max((rule.confirm.n for rule in policy.rules), default=1) - 1


def _first_served(window: Window) -> datetime | None:
    """When the window's earliest event was served (None for an empty window)."""
    if TS not in window.current.columns or window.current.empty:
        return None
    import pandas as pd

    first = window.current[TS].min()
    return None if pd.isna(first) else pd.Timestamp(first).to_pydatetime()


def _result(run_id: int, f: Finding) -> CheckResult:
    return CheckResult(check_run_id=run_id, feature=f.feature, test=f.test, statistic=f.statistic,
                       p_value=f.p_value, score=f.score, threshold=f.threshold, direction=f.direction,
                       breached=f.breached, threshold_source=f.threshold_source, extra=f.extra, mode=f.mode,
                       note=f.note)
