"""Prometheus Alertmanager in: its webhook (version 4) opens, updates and resolves incidents keyed by groupKey.

Infrastructure failures land in the same postmortem database as model failures, paged the same way. As in
Grafana OnCall's Alertmanager integration, `groupKey` is the incident's dedup key and `fingerprint` names each
alert of the group; a resolved group resolves the incident only if Alertmanager opened it.
"""

import hashlib
import logging
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from alerts.metrics import Metrics
from alerts.oncall.escalation import page_new_incident
from alerts.silences import owes_page, silenced
from postmortems.documents import refresh_document
from postmortems.models import ACTIVE, Incident, Severity, Status
from postmortems.service import add_entry, find_open, transition
from postmortems.similar import link_similar
from watchtower.auth.bearer import WriteAccess
from watchtower.clock import to_utc, utcnow
from watchtower.deps import SessionDep
from watchtower.errors import problem_responses
from watchtower.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["alertmanager"], dependencies=WriteAccess, responses=problem_responses(401, 422))
SOURCE = "alertmanager"
SEVERITIES = {"critical": "SEV1", "page": "SEV2", "error": "SEV2", "high": "SEV2", "major": "SEV2",
              "warning": "SEV3", "minor": "SEV3", "info": "SEV4", "low": "SEV4", "none": "SEV4"}


class AlertIn(BaseModel):
    """One alert of the group; unknown fields are accepted (Alertmanager adds some now and then)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=2000)
    fingerprint: str = Field(min_length=1, max_length=64)


class Notification(BaseModel):
    """Alertmanager's webhook body, version 4 (notification_reason and other new fields are accepted)."""

    model_config = ConfigDict(extra="allow")
    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1, max_length=10_000)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=500)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL", max_length=2000)
    alerts: list[AlertIn] = Field(min_length=1, max_length=10_000)


class Received(BaseModel):
    """What Watchtower made of a notification."""

    incident_id: int | None
    created: bool
    status: str | None
    page: Literal["queued", "silenced", "none"]
    detail: str


def open_key(group_key: str) -> str:
    """A short stable key from Alertmanager's groupKey (which can be long), unique per group."""
    return "am:" + hashlib.sha256(group_key.encode()).hexdigest()[:40]


def severity_of(body: Notification) -> str:
    """SEVn from the alerts' `severity` label (critical: SEV1, warning: SEV3, ...); SEV3 if absent or unknown."""
    given = [a.labels.get("severity", body.common_labels.get("severity", "")) for a in body.alerts]
    known = {s.value for s in Severity}
    levels = [SEVERITIES.get(s.lower(), s.upper() if s.upper() in known else "SEV3") for s in given]
    return min(levels, default="SEV3")


def _alert(alert: AlertIn) -> dict[str, Any]:
    # A firing alert's endsAt is Alertmanager's zero time (0001-01-01) or its resolve timeout: not an end yet.
    ends = alert.ends_at if alert.status == "resolved" and alert.ends_at is not None else None
    return {"fingerprint": alert.fingerprint, "status": alert.status, "labels": alert.labels,
            "annotations": alert.annotations, "starts_at": to_utc(alert.starts_at).isoformat(),
            "ends_at": to_utc(ends).isoformat() if ends else None, "generator_url": alert.generator_url}


def evidence_of(body: Notification, before: dict[str, Any] | None) -> dict[str, Any]:
    """Labels, annotations and every alert seen (by fingerprint, the latest state of each)."""
    alerts = {a["fingerprint"]: a for a in (before or {}).get("alerts", [])}
    alerts |= {a.fingerprint: _alert(a) for a in body.alerts}
    return {"source": SOURCE, "group_key": body.group_key, "receiver": body.receiver,
            "group_labels": body.group_labels, "common_labels": body.common_labels,
            "common_annotations": body.common_annotations, "external_url": body.external_url,
            "truncated_alerts": body.truncated_alerts, "alerts": list(alerts.values())}


def _describe(body: Notification) -> str:
    firing = [a for a in body.alerts if a.status == "firing"]
    names = sorted({a.labels.get("alertname", a.fingerprint) for a in firing})
    text = body.common_annotations.get("description") or body.common_annotations.get("summary") or ""
    what = f"{len(firing)} firing ({', '.join(names)})" if firing else "all resolved"
    return (f"{text} " if text else "") + f"[Alertmanager group {body.group_labels or '{}'}: {what}]"


def _title(body: Notification) -> str:
    names = sorted({a.labels.get("alertname", "") for a in body.alerts} - {""})
    return (body.common_annotations.get("summary") or body.common_labels.get("alertname")
            or ", ".join(names) or "Alertmanager alert")[:300]


def _models(body: Notification) -> list[str]:
    return sorted({a.labels["model"] for a in body.alerts if a.labels.get("model")})


def receive(session: Session, settings: Settings, metrics: Metrics, body: Notification, now: datetime) -> Received:
    """Open or update the group's incident (firing), or record the resolution and resolve it (resolved)."""
    key = open_key(body.group_key)
    incident = find_open(session, key)
    if body.status == "resolved":
        return _resolved(session, body, incident or _latest(session, key), now)
    created = False
    if incident is None:
        incident, created = _open(session, body, key, now)
    else:
        _update(session, body, incident, now)
    assert incident.id is not None
    firing = [a for a in body.alerts if a.status == "firing"]
    labels = [{"model": a.labels.get("model", ""), "monitor": a.labels.get("monitor", ""),
               "detector": a.labels.get("detector", ""), "kind": a.labels.get("kind", ""),
               "feature": a.labels.get("feature", ""), "severity": incident.severity} for a in firing]
    if not (created or owes_page(session, incident.id)):
        return Received(incident_id=incident.id, created=False, status=incident.status, page="none",
                        detail=f"added to incident #{incident.id}; already paged")
    silence = silenced(session, labels, now)
    if silence is not None:
        detail = f"page silenced by silence #{silence.id} ({silence.created_by}: {silence.comment})"
        add_entry(session, incident.id, "silenced", detail, at=now)
        models = incident.affected_models
        metrics.breaches_silenced.labels(models[0] if len(models) == 1 else "").inc()
        return Received(incident_id=incident.id, created=created, status=incident.status, page="silenced",
                        detail=detail)
    _page(session, settings, metrics, incident, now)
    return Received(incident_id=incident.id, created=created, status=incident.status, page="queued",
                    detail=f"Slack alert queued for {settings.slack_channel}")


def _open(session: Session, body: Notification, key: str, now: datetime) -> tuple[Incident, bool]:
    from watchtower.registry.models import MonitoredModel

    models = _models(body)
    model = session.exec(select(MonitoredModel).where(MonitoredModel.name == models[0])).first() \
        if len(models) == 1 else None
    severity = severity_of(body)
    incident = Incident(
        title=_title(body), summary=_describe(body), severity=severity, source=SOURCE,
        severity_rule=f"Alertmanager severity label ({severity})", model_id=model.id if model else None,
        open_key=key, group_key=key, affected_models=models, evidence=evidence_of(body, None),
        impact_started_at=min(to_utc(a.starts_at) for a in body.alerts), opened_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(incident)
            session.flush()
    except IntegrityError:  # Alertmanager replicas (HA) send the same group at once: the second one appends
        existing = find_open(session, key)
        assert existing is not None, "open_key conflict without an active incident"
        _update(session, body, existing, now)
        return existing, False
    assert incident.id is not None
    add_entry(session, incident.id, SOURCE, f"Opened by Alertmanager ({body.receiver}): {_describe(body)}",
              author=SOURCE, details=incident.evidence, at=now)
    refresh_document(session, incident)
    link_similar(session, incident)
    return incident, True


def _update(session: Session, body: Notification, incident: Incident, now: datetime) -> None:
    assert incident.id is not None
    incident.evidence = evidence_of(body, incident.evidence)
    severity = severity_of(body)
    if severity < incident.severity:  # "SEV1" < "SEV3": only ever raised
        add_entry(session, incident.id, "severity", f"Severity raised from {incident.severity} to {severity}",
                  author=SOURCE, at=now)
        incident.severity, incident.severity_rule = severity, f"Alertmanager severity label ({severity})"
    incident.summary, incident.updated_at = _describe(body), now
    session.add(incident)
    add_entry(session, incident.id, SOURCE, f"Alertmanager: {_describe(body)}", author=SOURCE,
              details={"alerts": [_alert(a) for a in body.alerts]}, at=now)
    session.flush()
    refresh_document(session, incident)


def _resolved(session: Session, body: Notification, incident: Incident | None, now: datetime) -> Received:
    if incident is None or incident.id is None:
        return Received(incident_id=None, created=False, status=None, page="none",
                        detail="no incident for this group (its firing notification never arrived)")
    _update(session, body, incident, now)
    if Status(incident.status) in ACTIVE and incident.source == SOURCE:
        transition(session, incident, Status.resolved, SOURCE, "every alert of the Alertmanager group resolved")
        detail = f"resolved incident #{incident.id}"
    else:
        detail = f"recorded on incident #{incident.id} ({incident.status}; not opened by Alertmanager alone)" \
            if incident.source != SOURCE else f"recorded on incident #{incident.id} ({incident.status})"
    return Received(incident_id=incident.id, created=False, status=incident.status, page="none", detail=detail)


def _latest(session: Session, key: str) -> Incident | None:
    return session.exec(select(Incident).where(Incident.group_key == key)
                        .order_by(col(Incident.id).desc())).first()


def _page(session: Session, settings: Settings, metrics: Metrics, incident: Incident, now: datetime) -> None:
    assert incident.id is not None
    page_new_incident(session, settings, metrics, incident, now, mitigations=[])
    add_entry(session, incident.id, "notify", f"Slack alert queued for {settings.slack_channel}", author=SOURCE)


@router.post("/alertmanager", response_model=Received)
def alertmanager_webhook(body: Notification, request: Request, session: SessionDep) -> Received:
    """Alertmanager's webhook receiver (version 4): point a `webhook_configs` url here, with the API token as
    `http_config.authorization.credentials` and `send_resolved: true`."""
    metrics: Metrics = request.app.state.metrics
    metrics.alertmanager_groups.labels(body.status).inc()
    received = receive(session, request.app.state.settings, metrics, body, utcnow())
    session.commit()
    log.info("alertmanager %s group %s: %s", body.status, body.group_key, received.detail)
    return received
