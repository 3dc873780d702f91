"""Escalation: a new incident starts its model's policy (frozen into the incident), and a scheduled job runs
each step when it is due until someone acknowledges; an acknowledged incident still breaching after the ack
timeout is re-paged from step 1. The state lives in incident_escalation, so a restart carries on.

Acknowledgements are read (incident.status), not hooked: whoever acks (API, page, Slack), the next pass sees it.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from alerts.metrics import Metrics
from alerts.oncall.escalation_models import IncidentEscalation
from alerts.oncall.escalation_policies import freeze, policy_for
from alerts.oncall.paging import AUTHOR, page_step
from alerts.outbox import enqueue
from alerts.slack.store import incident_payload
from alerts.slack.updates import incident_changed
from postmortems.documents import refresh_document
from postmortems.models import ACTIVE, Incident, Status, TimelineEntry
from postmortems.service import add_entry
from watchtower.clock import to_utc
from watchtower.db import writer
from watchtower.runtime import Runtime
from watchtower.settings import Settings

log = logging.getLogger(__name__)
ACTIVE_STATE, EXHAUSTED, ACKNOWLEDGED, DONE = "active", "exhausted", "acknowledged", "done"
ACKED = (Status.acknowledged.value, Status.mitigated.value)


def page_new_incident(session: Session, settings: Settings, metrics: Metrics, incident: Incident, now: datetime,
                      mitigations: list[str]) -> IncidentEscalation | None:
    """Page a new incident: queue its Slack message (with its buttons) and start its escalation chain.

    The one way a new incident is paged, whether a monitor pass or Alertmanager opened it.
    """
    assert incident.id is not None
    payload = incident_payload(session, incident, channel=settings.slack_channel, public_url=settings.public_url,
                               oncall=settings.oncall_slack_user, mitigations=mitigations)
    enqueue(session, "slack", payload, incident_id=incident.id)
    return start_escalation(session, settings, metrics, incident, now)


def start_escalation(session: Session, settings: Settings, metrics: Metrics, incident: Incident,
                     now: datetime) -> IncidentEscalation | None:
    """Start the chain of the policy routed to the incident's model and run its first step now.

    Called where a new incident is paged (never for a silenced or inhibited one); a second call does nothing.
    None when no policy applies (no route and no default).
    """
    assert incident.id is not None
    if session.get(IncidentEscalation, incident.id) is not None:
        return None
    policy, source = policy_for(session, incident.model_id)
    if policy is None:
        return None
    chain = freeze(session, policy)
    escalation = IncidentEscalation(incident_id=incident.id, policy=policy.name, chain=chain, next_at=now,
                                    started_at=now, updated_at=now)
    session.add(escalation)
    add_entry(session, incident.id, "escalation",
              f"Escalation started: policy '{policy.name}' ({'routed to the model' if source == 'model' else source}"
              f"), {len(chain['steps'])} step(s), repeated {chain['repeat']} time(s)",
              author=AUTHOR, details=chain, at=now)
    _run_step(session, settings, metrics, incident, escalation, now, first=True)
    session.flush()
    return escalation


def advance_escalations(runtime: Runtime, now: datetime) -> int:
    """One pass of the escalation job: every unfinished escalation, each in its own transaction; returns how
    many steps paged. A failure on one incident is logged and the others go on."""
    with Session(runtime.engine) as session:
        ids = list(session.exec(select(IncidentEscalation.incident_id)
                                .where(IncidentEscalation.state != DONE)
                                .order_by(col(IncidentEscalation.incident_id))).all())
    paged = 0
    for incident_id in ids:
        try:
            with Session(writer(runtime.engine)) as session:
                paged += advance(session, runtime.settings, runtime.metrics, incident_id, now)
                session.commit()
        except Exception:  # one broken escalation must not stop the others' pages
            log.exception("escalation of incident #%s failed", incident_id)
            runtime.metrics.action_failures.labels("escalation").inc()
    return paged


def advance(session: Session, settings: Settings, metrics: Metrics, incident_id: int, now: datetime) -> int:
    """Move one incident's escalation on as far as `now` calls for; returns the steps paged (0 or 1)."""
    escalation = session.get(IncidentEscalation, incident_id)
    incident = session.get(Incident, incident_id)
    if escalation is None or incident is None or escalation.state == DONE:
        return 0
    if Status(incident.status) not in ACTIVE:
        _set(session, escalation, DONE, now)
        add_entry(session, incident_id, "escalation", f"Escalation stopped: incident {incident.status}",
                  author=AUTHOR, at=now)
        return 0
    if escalation.state in (ACTIVE_STATE, EXHAUSTED) and incident.status != Status.open:
        who, when = _acknowledgement(session, incident_id)
        escalation.acked_at = when or now
        _set(session, escalation, ACKNOWLEDGED, now)
        add_entry(session, incident_id, "escalation",
                  f"Escalation stopped: {incident.status} by {who} at {escalation.acked_at.isoformat()}",
                  author=AUTHOR, details={"acknowledged_by": who}, at=now)
        return 0
    if escalation.state == ACKNOWLEDGED:
        return _repage_if_due(session, settings, metrics, incident, escalation, now)
    if escalation.state == ACTIVE_STATE and escalation.next_at is not None and to_utc(escalation.next_at) <= now:
        _run_step(session, settings, metrics, incident, escalation, now, first=False)
        return 1
    return 0


def _run_step(session: Session, settings: Settings, metrics: Metrics, incident: Incident,
              escalation: IncidentEscalation, now: datetime, *, first: bool) -> None:
    """Page the current step, then schedule the next one (or the next repeat, or stop when all are done)."""
    steps: list[dict[str, Any]] = escalation.chain["steps"]
    repeat: int = escalation.chain["repeat"]
    step = steps[escalation.step]
    label = (f"Escalation step {escalation.step + 1} of {len(steps)} (policy '{escalation.policy}'"
             + (f", repeat {escalation.repeats_done} of {repeat}" if escalation.repeats_done else "") + ")")
    if not first:
        metrics.escalations.inc()
        add_entry(session, incident.id or 0, "escalation", f"Escalated to step {escalation.step + 1}: nobody "
                  "acknowledged", author=AUTHOR, at=now)
    page_step(session, incident, step, label=label, now=now, public_url=settings.public_url,
              incident_channel=settings.slack_channel, metrics=metrics)
    escalation.next_at = now + timedelta(minutes=step["delay_minutes"])
    if escalation.step + 1 < len(steps):
        escalation.step += 1
    elif escalation.repeats_done < repeat:
        escalation.step, escalation.repeats_done = 0, escalation.repeats_done + 1
    else:
        escalation.next_at = None
        escalation.state = EXHAUSTED
        add_entry(session, incident.id or 0, "escalation", f"Escalation exhausted: every step ran {repeat + 1} "
                  "time(s) and nobody acknowledged", author=AUTHOR, at=now)
    _set(session, escalation, escalation.state, now)


def _repage_if_due(session: Session, settings: Settings, metrics: Metrics, incident: Incident,
                   escalation: IncidentEscalation, now: datetime) -> int:
    """Re-page an acknowledged incident still breaching once the ack timeout is over: back to open, step 1."""
    timeout = settings.ack_timeout_minutes
    if timeout == 0 or incident.status != Status.acknowledged or escalation.acked_at is None:
        return 0
    acked_at = to_utc(escalation.acked_at)
    if now < acked_at + timedelta(minutes=timeout):
        return 0
    breach = _breach_since(session, incident.id or 0)
    if breach is None:
        return 0
    assert incident.id is not None
    # As PagerDuty's ack timeout does, the incident goes back to open, so it can (and must) be acknowledged again.
    incident.status, incident.updated_at = Status.open.value, now
    session.add(incident)
    add_entry(session, incident.id, "status", f"acknowledged → open: still breaching {timeout} min after the "
              f"acknowledgement (last breach at {to_utc(breach.at).isoformat()})", author=AUTHOR,
              details={"from": Status.acknowledged.value, "to": Status.open.value, "reason": "ack timeout"}, at=now)
    add_entry(session, incident.id, "escalation", "Re-paged after the ack timeout: the escalation restarts from "
              "step 1", author=AUTHOR, at=now)
    refresh_document(session, incident)
    escalation.step, escalation.repeats_done, escalation.acked_at = 0, 0, None
    escalation.started_at = now
    _set(session, escalation, ACTIVE_STATE, now)
    incident_changed(session, incident.id, f"Re-paged: still breaching {timeout} min after the acknowledgement")
    _run_step(session, settings, metrics, incident, escalation, now, first=True)
    return 1


def _breach_since(session: Session, incident_id: int) -> TimelineEntry | None:
    """The latest sign, appended after the acknowledgement, that the incident still breaches: a monitor's
    breach, or an Alertmanager notification with an alert still firing. Ordered by entry, not by `at`: a
    breach is stamped with its window's end, which can be earlier than an ack made while it was computed."""
    statuses = session.exec(select(TimelineEntry).where(
        TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "status")
        .order_by(col(TimelineEntry.id).desc())).all()
    ack = next((e.id for e in statuses if e.details.get("to") in ACKED), None)
    entries = session.exec(select(TimelineEntry).where(
        TimelineEntry.incident_id == incident_id, col(TimelineEntry.kind).in_(("breach", "alertmanager")),
        col(TimelineEntry.id) > (ack or 0)).order_by(col(TimelineEntry.id).desc())).all()
    return next((e for e in entries if e.kind == "breach"
                 or any(a.get("status") == "firing" for a in e.details.get("alerts", []))), None)


def _acknowledgement(session: Session, incident_id: int) -> tuple[str, datetime | None]:
    """Who moved the incident out of open (acknowledged or mitigated), and when: its latest status entry."""
    entry = session.exec(select(TimelineEntry).where(
        TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "status")
        .order_by(col(TimelineEntry.id).desc())).first()
    if entry is None:
        return "someone", None
    return entry.author, to_utc(entry.at)


def _set(session: Session, escalation: IncidentEscalation, state: str, now: datetime) -> None:
    escalation.state, escalation.updated_at = state, now
    session.add(escalation)
