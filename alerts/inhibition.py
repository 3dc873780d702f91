"""Inhibition: while a data or pipeline incident is open for a model, its drift and KPI pages are held.

One cause, one page: broken data makes the inputs drift and the KPIs fall, and the people paged for the
data need no second page about its symptoms. As in Alertmanager's inhibit rules (`equal: [model]`), the
source is the open incident, the target is the page, and they must share the model.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, or_, select

from detectors import registry
from detectors.base import DetectorKind
from postmortems.models import ACTIVE, Incident

CAUSE_KINDS = frozenset({DetectorKind.DATA_QUALITY, DetectorKind.SKEW, DetectorKind.VOLUME})
HELD_KINDS = frozenset({DetectorKind.INPUT_DRIFT, DetectorKind.PREDICTION_DRIFT, DetectorKind.KPI,
                        DetectorKind.ESTIMATED_KPI})
# The `kind` label of an Alertmanager alert that says the data or its pipeline broke.
PIPELINE_ALERT_KINDS = frozenset({"pipeline", "data", "freshness", *CAUSE_KINDS})


@dataclass(frozen=True)
class Inhibitor:
    """The open incident that holds a page, and what about it does."""

    incident_id: int
    title: str
    cause: str


def is_held_page(labels: Sequence[Mapping[str, str]]) -> bool:
    """Whether a page is about symptoms only: every label set is a drift or KPI finding."""
    return bool(labels) and all(s.get("kind", "") in HELD_KINDS for s in labels)


def cause_of(evidence: Mapping[str, Any], model: str) -> str | None:
    """Why an incident's evidence makes it the cause for `model`'s symptoms, or None. Pure.

    A detector incident: a data-quality, skew or volume detector breached. An Alertmanager incident: a firing
    alert labelled with the model and a pipeline/data kind.
    """
    breached = sorted({c["detector"] for c in evidence.get("checks", []) if c.get("status") == "breached"
                       and registry.kind_of(c["detector"]) in CAUSE_KINDS})
    if breached and evidence.get("model", model) == model:
        return f"{', '.join(breached)} breached"
    for alert in evidence.get("alerts", []):
        labels = alert.get("labels", {})
        if (alert.get("status") == "firing" and labels.get("model") == model
                and labels.get("kind", "") in PIPELINE_ALERT_KINDS):
            return f"Alertmanager alert {labels.get('alertname', '?')} ({labels['kind']}) is firing"
    return None


def inhibitor(session: Session, model_id: int, model: str, labels: Sequence[Mapping[str, str]],
              exclude_incident_id: int | None) -> Inhibitor | None:
    """The oldest active incident, other than the page's own, that inhibits this page; None if none does."""
    if not is_held_page(labels):
        return None
    query = select(Incident).where(col(Incident.status).in_([s.value for s in ACTIVE]),
                                   or_(Incident.model_id == model_id, Incident.source == "alertmanager"))
    if exclude_incident_id is not None:
        query = query.where(Incident.id != exclude_incident_id)
    for incident in session.exec(query.order_by(col(Incident.id))):
        cause = cause_of(incident.evidence, model)
        if cause is not None and incident.id is not None:
            return Inhibitor(incident.id, incident.title, cause)
    return None
