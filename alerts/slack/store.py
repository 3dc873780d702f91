"""An incident's Slack message from the database: what it says now, where it was posted, whether it is on its way."""

import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from alerts.slack.messages import IncidentState, incident_message
from alerts.slack.models import SlackMessage
from alerts.slack.updates import original_status
from postmortems.models import Incident, IncidentTag, Status, TimelineEntry
from postmortems.service import incident_url, similar_of
from postmortems.taxonomy import load_index
from watchtower.actions.models import ActionRun
from watchtower.db import writer
from watchtower.registry.models import MonitoredModel, Pipeline, Role

log = logging.getLogger(__name__)
MITIGATIONS = ("pause_pipeline", "swap_model")


def incident_state(session: Session, incident: Incident) -> IncidentState:
    """Status, who acknowledged, and whether the model's fallback serves and its pipeline is paused."""
    acked_by = None
    if incident.status != Status.open:
        entries = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident.id,
                                                           TimelineEntry.kind == "status")
                               .order_by(col(TimelineEntry.id).desc())).all()
        acked_by = next((e.author for e in entries if e.details.get("to") == Status.acknowledged), None)
    model = session.get(MonitoredModel, incident.model_id) if incident.model_id is not None else None
    pipeline = session.get(Pipeline, model.pipeline_id) if model is not None else None
    return IncidentState(status=incident.status, acknowledged_by=acked_by,
                         fallback_of=model.name if model and model.active_role == Role.fallback else None,
                         paused_pipeline=pipeline.name if pipeline and pipeline.paused else None)


def incident_payload(session: Session, incident: Incident, *, channel: str, public_url: str, oncall: str | None,
                     mitigations: list[str] | None = None) -> dict[str, Any]:
    """The incident's whole message as it should read now (mitigations: the successful automatic ones)."""
    assert incident.id is not None
    if mitigations is None:
        mitigations = list(session.exec(select(ActionRun.detail).where(
            ActionRun.incident_id == incident.id, col(ActionRun.ok), col(ActionRun.action).in_(MITIGATIONS),
            ActionRun.author == "watchtower").order_by(col(ActionRun.id))).all())
    past = [
        f"#{s.id} {s.title} ({s.status}"
        + (f"; root cause: {', '.join(s.root_causes)}" if s.root_causes else "")
        + (f"; fixed by: {s.fixed_by}" if s.fixed_by else "") + ")"
        for s in similar_of(session, incident.id, load_index(session))[:2]
    ]
    return incident_message(
        channel=channel, incident_id=incident.id, severity=incident.severity, title=incident.title,
        summary=incident.summary, mitigations=mitigations, url=incident_url(public_url, incident.id),
        oncall=oncall, similar=past, state=incident_state(session, incident),
        diagnosis=diagnosis_lines(session, incident))


def diagnosis_lines(session: Session, incident: Incident, limit: int = 3) -> list[str]:
    """The most confident root causes the diagnosis suggested (not rejected): 'Unit change (86%): reason'."""
    index = load_index(session)
    tags = session.exec(select(IncidentTag).where(IncidentTag.incident_id == incident.id,
                                                  IncidentTag.confidence != "rejected", IncidentTag.reason != "")).all()
    causes = sorted((t for t in tags if index.is_root_cause(t.tag)), key=lambda t: -(t.score or 0.0))[:limit]
    return [f"{index.label(t.tag)} ({(t.score or 0.0):.0%}{', confirmed' if t.confidence == 'confirmed' else ''}): "
            f"{t.reason}" for t in causes]


class IncidentMessages:
    """The sender's view of the database: where incident messages are, and what they should say now."""

    def __init__(self, engine: Engine, *, public_url: str, oncall: str | None) -> None:
        self._engine, self._public_url, self._oncall = engine, public_url, oncall

    def location(self, incident_id: int) -> tuple[str, str] | None:
        """(channel id, ts) of the incident's posted message."""
        with Session(self._engine) as session:
            found = session.get(SlackMessage, incident_id)
            return (found.channel, found.ts) if found else None

    def waiting(self, incident_id: int) -> bool:
        """Whether the incident's first message is still in the outbox (so an edit should wait for it)."""
        with Session(self._engine) as session:
            return original_status(session, incident_id) is not None

    def render(self, incident_id: int, channel: str) -> dict[str, Any]:
        """The message's channel, text and blocks, showing the incident as it is now."""
        with Session(self._engine) as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise LookupError(f"incident {incident_id} no longer exists")
            payload = incident_payload(session, incident, channel=channel, public_url=self._public_url,
                                       oncall=self._oncall)
        payload.pop("incident_message")
        return payload

    def record(self, incident_id: int, channel: str, ts: str) -> str:
        """Remember where the message went; say so. A failure is logged, not raised: the post is done and
        raising would post it again."""
        try:
            with Session(writer(self._engine)) as session:
                session.merge(SlackMessage(incident_id=incident_id, channel=channel, ts=ts))
                session.commit()
        except SQLAlchemyError as exc:
            log.error("incident #%s's Slack message (%s %s) was posted but not recorded; it will not be "
                      "updated: %s", incident_id, channel, ts, exc)
            return "not recorded, so it will not be updated"
        return "recorded for updates"
