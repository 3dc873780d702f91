"""Whether a breach's page is held: by a silence, or inhibited by an open data/pipeline incident.

The breach is still recorded on its incident (open_incident has run); only `notify` is skipped, and the
decision and the timeline say which silence or incident held it.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session

from alerts.inhibition import inhibitor
from alerts.silences import owes_page, silenced
from detectors import registry
from postmortems.service import add_entry
from watchtower.policy.breach import Breach
from watchtower.runtime import Runtime

__all__ = ["Held", "breach_labels", "hold_page", "owes_page"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    """A page that was not sent, and why."""

    outcome: Literal["silenced", "inhibited"]
    detail: str


def breach_labels(breach: Breach) -> list[dict[str, str]]:
    """One label set per breached finding (model, monitor, detector, kind, feature, severity)."""
    severity = breach.plan.severity if breach.plan and breach.plan.severity else ""
    return [{"model": breach.model_name, "monitor": breach.monitor_name, "detector": o.detector,
             "kind": str(registry.kind_of(o.detector) or ""), "feature": f.feature, "severity": severity}
            for o in breach.breached for f in o.findings if f.breached]


def hold_page(session: Session, runtime: Runtime, breach: Breach, incident_id: int | None,
              now: datetime) -> Held | None:
    """Held (and written on the incident's timeline, and counted) if a silence or an inhibiting incident
    holds this breach's page; None if it goes out. If the check itself fails, the page goes out."""
    labels = breach_labels(breach)
    try:
        with session.begin_nested():
            held = _held(session, runtime, breach, labels, incident_id, now)
    except Exception:  # a page sent in doubt beats a page lost to a bug in the check
        log.exception("silence/inhibition check failed for model %s; paging", breach.model_name)
        runtime.metrics.action_failures.labels("mute").inc()
        return None
    if held is not None and incident_id is not None:
        add_entry(session, incident_id, held.outcome, held.detail, at=now)
    return held


def _held(session: Session, runtime: Runtime, breach: Breach, labels: list[dict[str, str]],
          incident_id: int | None, now: datetime) -> Held | None:
    silence = silenced(session, labels, now)
    if silence is not None:
        runtime.metrics.breaches_silenced.labels(breach.model_name).inc()
        return Held("silenced", f"page silenced by silence #{silence.id} ({silence.created_by}: {silence.comment})")
    source = inhibitor(session, breach.model_id, breach.model_name, labels, incident_id)
    if source is None:
        return None
    runtime.metrics.breaches_inhibited.labels(breach.model_name).inc()
    return Held("inhibited", f"page inhibited by incident #{source.incident_id} ({source.title}): {source.cause}; "
                             "one cause, one page")
