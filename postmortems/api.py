"""Incidents over JSON: search, read, resolve."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from postmortems.models import IncidentRead, Status
from postmortems.search import search_incidents
from postmortems.service import get_incident, incident_read, resolve
from postmortems.taxonomy import Tag
from watchtower.auth import WriteAccess
from watchtower.db import SessionDep
from watchtower.errors import problem_responses
from watchtower.registry.schemas import OperatorDecision
from watchtower.registry.service import get_model

router = APIRouter(prefix="/incidents", tags=["incidents"], responses=problem_responses(404, 422))


@router.get("", response_model=list[IncidentRead])
def search(request: Request, session: SessionDep, q: str = "", tag: Tag | None = None,
           status: Status | None = None, model: str | None = None,
           limit: Annotated[int, Query(gt=0, le=200)] = 50) -> list[IncidentRead]:
    """Search incidents: every word of `q` must match (title, summary, model, features, tags)."""
    model_id = get_model(session, model).id if model else None
    found = search_incidents(session, q, tag.value if tag else None, status.value if status else None, model_id, limit)
    url = request.app.state.settings.public_url
    return [incident_read(session, i, url) for i in found]


@router.get("/{incident_id}", response_model=IncidentRead)
def read(incident_id: int, request: Request, session: SessionDep) -> IncidentRead:
    """One incident with its evidence, tags and timeline."""
    return incident_read(session, get_incident(session, incident_id), request.app.state.settings.public_url)


@router.post("/{incident_id}/resolve", response_model=IncidentRead, dependencies=WriteAccess,
             responses=problem_responses(401, 409))
def resolve_incident(incident_id: int, body: OperatorDecision, request: Request,
                     session: SessionDep) -> IncidentRead:
    """Close an incident, with who and why on its timeline."""
    incident = resolve(session, get_incident(session, incident_id), body.author, body.reason)
    session.commit()
    return incident_read(session, incident, request.app.state.settings.public_url)
