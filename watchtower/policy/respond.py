"""Carry out a pass's plan: run the live actions, record the dry-run ones, store the decision, note recovery."""

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from postmortems.models import ACTIVE, Status, TimelineEntry
from postmortems.service import add_entry, transition
from watchtower.actions.base import Action, ActionContext, run_actions
from watchtower.actions.notify import NotifySlack
from watchtower.actions.open_incident import OpenIncident, find_group_incident
from watchtower.actions.pause_pipeline import PausePipeline
from watchtower.actions.swap_model import SwapToFallback
from watchtower.policy import holds, store
from watchtower.policy.breach import Breach
from watchtower.policy.decide import ACTION_WORDS, Plan
from watchtower.policy.models import PolicyDecision
from watchtower.policy.mute import hold_page, owes_page
from watchtower.policy.rules import Policy
from watchtower.registry.models import MonitoredModel, Pipeline, Role
from watchtower.registry.service import current_version, version_label
from watchtower.runtime import Runtime

log = logging.getLogger(__name__)
ACTIONS: dict[str, Action] = {"pause_pipeline": PausePipeline(), "swap_model": SwapToFallback(),
                              "open_incident": OpenIncident(), "notify": NotifySlack()}


def respond(session: Session, runtime: Runtime, breach: Breach, policy: Policy, scope: str,
            now: datetime) -> PolicyDecision:
    """Act on `breach.plan`, then store and return the decision (flushed, not committed)."""
    plan = breach.plan
    assert plan is not None
    decision = PolicyDecision(model_id=breach.model_id, monitor_id=breach.monitor_id, at=now, verdict=plan.verdict,
                              matched=sorted(plan.matched), fired=sorted(h.rule.name for h in plan.fired),
                              severity=plan.severity, explanation=plan.explain(), policy_scope=scope)
    ctx = ActionContext(breach, runtime)
    held = holds.held(session, breach.model_id, plan.actions, now)  # an operator's restore/resume sticks
    # --- silences and inhibition (issue 11): the breach is recorded on its incident, the page may be held ---
    before_page = [a for a in plan.actions if a != "notify" and a not in held]
    if before_page:
        run_actions([ACTIONS[a] for a in before_page], ctx, session)
    opened = ctx.incident_created
    muted = hold_page(session, runtime, breach, ctx.incident_id, now) if "notify" in plan.actions else None
    if "notify" in plan.actions and muted is None:
        ctx.incident_created = ctx.incident_created or owes_page(session, ctx.incident_id)
        run_actions([ACTIONS["notify"]], ctx, session)
    # --- end of silences and inhibition ---
    incident_id = ctx.incident_id or _open_incident_id(session, breach.group_key)
    if opened and breach.first_event_at is not None:  # MTTD, as the page and the analytics count it
        runtime.metrics.incident_stage.labels("detect").observe(
            max((breach.window_end - breach.first_event_at).total_seconds(), 0.0))
    decision.actions = [{"action": r.action, "rule": _rule(plan, r.action), "outcome": "done" if r.ok else "failed",
                         "detail": r.detail} for r in ctx.runs]
    if held:  # not run: recorded on the decision and the timeline, and alerted (holds.note_held)
        notes = holds.note_held(session, runtime.settings, breach.model_name, held, incident_id,
                                plan.severity or "SEV3", now)
        decision.actions += [{"action": a, "rule": _rule(plan, a), "outcome": "held", "detail": d}
                             for a, d in notes.items()]
    if muted is not None:
        decision.actions.append({"action": "notify", "rule": _rule(plan, "notify"), "outcome": muted.outcome,
                                 "detail": muted.detail})
    for action in plan.dry_run:
        detail = f"would {_would(session, breach, plan, action)}"
        rule = _rule(plan, action)
        decision.actions.append({"action": action, "rule": rule, "outcome": "dry_run", "detail": detail})
        runtime.metrics.dry_run_actions.labels(breach.model_name, rule, action).inc()
        if incident_id is not None:
            add_entry(session, incident_id, "dry_run", f"Dry run of rule '{rule}': {detail}",
                      details={"rule": rule, "action": action}, at=now)
    if plan.healthy and policy.recovery is not None:
        incident_id = _recover(session, breach, policy, now)
    decision.incident_id = incident_id
    session.add(decision)
    session.flush()
    return decision


def _rule(plan: Plan, action: str) -> str:
    hit = plan.rule_for(action)  # type: ignore[arg-type]
    return hit.rule.name if hit else ""


def _would(session: Session, breach: Breach, plan: Plan, action: str) -> str:
    """What a dry-run action would have done, in the words the live action would use."""
    model = session.get(MonitoredModel, breach.model_id)
    assert model is not None and model.id is not None
    if action == "swap_model":
        return f"swap to {version_label(current_version(session, model.id, Role.fallback))}"
    if action == "pause_pipeline":
        pipeline = session.get(Pipeline, model.pipeline_id)
        return f"pause pipeline '{pipeline.name if pipeline else ''}'"
    if action == "open_incident":
        hit = plan.rule_for("open_incident")
        return f"open a {hit.rule.severity if hit else 'SEV3'} incident: {hit.why() if hit else ''}"
    return ACTION_WORDS[action]


def _open_incident_id(session: Session, key: str) -> int | None:
    incident = find_group_incident(session, key)
    return incident.id if incident else None


def _recover(session: Session, breach: Breach, policy: Policy, now: datetime) -> int | None:
    """Mark the group's open incident recovered after enough healthy passes in a row (once per breach spell)."""
    assert policy.recovery is not None
    incident = find_group_incident(session, breach.group_key)
    if incident is None or incident.id is None:
        return None
    needed = policy.recovery.healthy_passes
    by_monitor = breach.monitor_id if policy.grouping == "model_monitor" else None
    # This pass is not stored yet: it is healthy, so it counts as one.
    if 1 + store.healthy_streak(session, breach.model_id, by_monitor, needed - 1) < needed:
        return incident.id
    last = session.exec(select(TimelineEntry.kind).where(
        TimelineEntry.incident_id == incident.id, col(TimelineEntry.kind).in_(("breach", "recovered")))
        .order_by(col(TimelineEntry.at).desc(), col(TimelineEntry.id).desc())).first()
    if last == "recovered":
        return incident.id
    add_entry(session, incident.id, "recovered", f"Recovered: {needed} healthy passes in a row, no rule matched",
              details={"healthy_passes": needed}, at=now)
    if policy.recovery.resolve and Status(incident.status) in ACTIVE:
        transition(session, incident, Status.resolved, "watchtower",
                   f"resolved by policy after {needed} healthy passes")
    log.info("incident #%s of %s recovered", incident.id, breach.model_name)
    return incident.id

