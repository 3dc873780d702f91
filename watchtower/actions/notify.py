"""Alert Slack (and the on-call person) about a new incident, through the outbox."""

from sqlmodel import Session

from alerts.outbox import enqueue
from alerts.slack import incident_message
from postmortems.models import Incident
from postmortems.service import incident_url, similar_of
from postmortems.taxonomy import load_index
from watchtower.actions.base import ActionContext


class NotifySlack:
    """Queue one Slack message per new incident; repeats of an open one stay on its timeline only."""

    name = "notify"

    def execute(self, ctx: ActionContext, session: Session) -> str:
        if ctx.incident_id is None:
            raise RuntimeError("no incident to alert about (open_incident did not run or failed)")
        if not ctx.incident_created:
            return f"incident #{ctx.incident_id} was already alerted; no new message"
        incident = session.get(Incident, ctx.incident_id)
        assert incident is not None
        settings = ctx.runtime.settings
        mitigations = [r.detail for r in ctx.runs if r.ok and r.action in ("pause_pipeline", "swap_model")]
        past = [
            f"#{s.id} {s.title} ({s.status}"
            + (f"; root cause: {', '.join(s.root_causes)}" if s.root_causes else "")
            + (f"; fixed by: {s.fixed_by}" if s.fixed_by else "") + ")"
            for s in similar_of(session, ctx.incident_id, load_index(session))[:2]
        ]
        payload = incident_message(
            channel=settings.slack_channel, incident_id=ctx.incident_id, severity=incident.severity,
            title=incident.title, summary=incident.summary, mitigations=mitigations,
            url=incident_url(settings.public_url, ctx.incident_id), oncall=settings.oncall_slack_user,
            similar=past)
        enqueue(session, "slack", payload, incident_id=ctx.incident_id)
        return f"Slack alert queued for {settings.slack_channel}"
