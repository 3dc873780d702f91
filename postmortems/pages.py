"""Server-rendered pages: search incidents, read one. Jinja2 autoescapes all user text."""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from postmortems.search import search_incidents
from postmortems.service import get_incident, incident_read
from postmortems.taxonomy import Tag
from watchtower.db import SessionDep

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(prefix="/postmortems", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def search_page(request: Request, session: SessionDep, q: str = "", tag: str = "") -> HTMLResponse:
    """The search form and its results."""
    valid_tag = tag if tag in {t.value for t in Tag} else None
    found = search_incidents(session, q, valid_tag)
    url = request.app.state.settings.public_url
    return templates.TemplateResponse(request, "search.html", {
        "q": q, "tag": valid_tag or "", "tags": [t.value for t in Tag],
        "incidents": [incident_read(session, i, url) for i in found]})


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(incident_id: int, request: Request, session: SessionDep) -> HTMLResponse:
    """One incident: status, evidence, tags and timeline."""
    incident = incident_read(session, get_incident(session, incident_id), request.app.state.settings.public_url)
    return templates.TemplateResponse(request, "incident.html", {"incident": incident})
