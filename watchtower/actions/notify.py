"""Alert Slack (and the on-call person) about a new incident, through the outbox."""

from sqlmodel import Session

from alerts.oncall.escalation import page_new_incident
from postmortems.models import Incident
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
        chain = page_new_incident(session, settings, ctx.runtime.metrics, incident, ctx.breach.window_end, mitigations)
        return f"Slack alert queued for {settings.slack_channel}" + (f"; escalation '{chain.policy}' started"
                                                                     if chain else "")
