"""The escalation policies page: each policy's steps, repeats, and the models routed to it (server-rendered)."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from alerts.oncall.escalation_models import EscalationPolicy
from alerts.oncall.escalation_policies import policy_read
from alerts.oncall.pages import render
from watchtower.auth.sessions import PageForms
from watchtower.deps import SessionDep
from watchtower.registry.models import MonitoredModel

router = APIRouter(prefix="/oncall", include_in_schema=False, dependencies=PageForms)


@router.get("/escalation", response_class=HTMLResponse)
def escalation_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Every policy in order of name, with its steps; the default policy also lists the models it covers."""
    rows = [policy_read(session, p) for p in
            session.exec(select(EscalationPolicy).order_by(col(EscalationPolicy.name))).all()]
    routed = {m for row in rows for m in row.models}
    unrouted = [n for n in session.exec(select(MonitoredModel.name).order_by(col(MonitoredModel.name))).all()
                if n not in routed]
    return render(request, "escalation.html", {"policies": rows, "unrouted": unrouted})
