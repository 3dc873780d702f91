"""Incidents over JSON: search, file, import, edit, move through the lifecycle, write up, export, analyse."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from postmortems import search as search_module
from postmortems import similar, transfer, writeup
from postmortems.analytics import summarize
from postmortems.diagnosis.guards import add_guard_item, proposals_for
from postmortems.models import Incident, Severity, Status
from postmortems.schemas import (
    ActionItemCreate,
    ActionItemRead,
    ActionItemUpdate,
    GuardProposalRead,
    IncidentCreate,
    IncidentRead,
    IncidentUpdate,
    NoteCreate,
    NotSimilar,
    TagDecision,
    Transition,
    WriteupRead,
    WriteupUpdate,
)
from postmortems.search import Filters, search
from postmortems.service import (
    action_item_read,
    add_action_item,
    add_note,
    decide_tag,
    file_incident,
    get_incident,
    incident_read,
    transition,
    update_action_item,
    update_incident,
)
from postmortems.taxonomy import KEY, TaxonomySpec, add_taxonomy, load_index, parse_spec
from watchtower.auth.access import PrincipalDep
from watchtower.auth.bearer import WriteAccess
from watchtower.auth.principal import attributed
from watchtower.auth.roles import Role
from watchtower.clock import to_utc
from watchtower.deps import SessionDep
from watchtower.errors import Forbidden, Invalid, field_error, problem_responses
from watchtower.limits import INT32_MAX, DatetimeBound, Id, SafeStr
from watchtower.registry.schemas import OperatorDecision

router = APIRouter(tags=["incidents"], responses=problem_responses(404, 422))
writes = APIRouter(tags=["incidents"], dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422))


class Hit(BaseModel):
    id: int
    title: str
    severity: str
    status: str
    model: str | None
    tags: list[str]
    opened_at: datetime
    url: str
    score: float | None
    snippet: str = Field(description="HTML: the passage escaped, each match in <mark>")
    snippet_text: str = Field(description="The same passage as written (unescaped), for clients that render it")
    highlights: list[tuple[int, int]] = Field(description="[start, end) offsets of the matches in snippet_text")


class SearchResponse(BaseModel):
    total: int
    total_capped: bool = False  # more matched than `window`: `total` is then a lower bound
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]
    window: int = Field(description="Facet counts and relevance ranking cover at most this many newest matches")


def filters_for(session: Session, tag: list[str], model: list[str], severity: list[Severity],
                status: list[Status], opened_from: datetime | None, opened_to: datetime | None) -> Filters:
    """Validate facet values and turn them into search filters."""
    from watchtower.registry.models import MonitoredModel

    index = load_index(session)
    unknown = [t for t in tag if t not in index.nodes]
    if unknown:
        raise Invalid(f"unknown tags {unknown}",
                      errors=[field_error("query.tag", f"unknown tag '{t}'") for t in unknown])
    model_ids = list(session.exec(select(MonitoredModel.id).where(col(MonitoredModel.name).in_(model))).all())
    if model and not model_ids:
        model_ids = [-1]  # a model filter that matches no model matches no incident
    return Filters(tags=tag, model_ids=[m for m in model_ids if m is not None], severities=[s.value for s in severity],
                   statuses=[s.value for s in status], opened_from=to_utc(opened_from) if opened_from else None,
                   opened_to=to_utc(opened_to) if opened_to else None)


@router.get("/incidents", response_model=SearchResponse)
def search_incidents(
    request: Request, session: SessionDep, q: Annotated[SafeStr, Query(max_length=1000)] = "",
    tag: Annotated[list[SafeStr], Query(description="Taxonomy key; includes everything below it")] = [],  # noqa: B006
    model: Annotated[list[SafeStr], Query()] = [],  # noqa: B006
    severity: Annotated[list[Severity], Query()] = [],  # noqa: B006
    status: Annotated[list[Status], Query()] = [],  # noqa: B006
    opened_from: DatetimeBound | None = None, opened_to: DatetimeBound | None = None,
    sort: Literal["relevance", "date"] = "relevance",
    limit: Annotated[int, Query(gt=0, le=200)] = 20, offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> SearchResponse:
    """Ranked full-text search (words, "phrases", -exclusions) with facets; snippets mark matches with <mark>."""
    filters = filters_for(session, tag, model, severity, status, opened_from, opened_to)
    results = search(session, q, filters, load_index(session), sort=sort, limit=limit, offset=offset)
    url = request.app.state.settings.public_url
    hits = light_hits(session, results.hits, url)
    return SearchResponse(total=results.total, total_capped=results.capped, hits=hits, facets=results.facets,
                          window=search_module.WINDOW)


@writes.post("/incidents", status_code=201, response_model=IncidentRead)
def file(body: IncidentCreate, request: Request, session: SessionDep, principal: PrincipalDep) -> IncidentRead:
    """File an incident by hand (not every failure is caught by a detector)."""
    body = attributed(body, principal)
    incident = file_incident(session, body)
    similar.link_similar(session, incident)
    session.commit()
    return _read(request, session, incident)


@writes.post("/incidents/import", status_code=201)
def import_incidents(body: transfer.ImportBatch, session: SessionDep) -> dict[str, list[int]]:
    """Load historic postmortems in one transaction: all of them, or none with a 422 naming each problem."""
    ids = transfer.import_incidents(session, body)
    session.commit()
    return {"ids": ids}


@router.get("/incidents/{incident_id}", response_model=IncidentRead)
def read(incident_id: Id, request: Request, session: SessionDep) -> IncidentRead:
    """One incident: evidence, tags, timeline, durations, action items, similar incidents."""
    return _read(request, session, get_incident(session, incident_id))


@writes.patch("/incidents/{incident_id}", response_model=IncidentRead)
def update(incident_id: Id, body: IncidentUpdate, request: Request, session: SessionDep) -> IncidentRead:
    """Edit title, summary, severity, owner, impact or affected models and pipelines."""
    incident = update_incident(session, get_incident(session, incident_id), body)
    session.commit()
    return _read(request, session, incident)


@writes.post("/incidents/{incident_id}/status", response_model=IncidentRead)
def move(incident_id: Id, body: Transition, request: Request, session: SessionDep,
         principal: PrincipalDep) -> IncidentRead:
    """Acknowledge, mitigate, resolve, complete the postmortem, or reopen."""
    body = attributed(body, principal)
    incident = transition(session, get_incident(session, incident_id), body.status, body.author, body.reason)
    session.commit()
    observe_durations(request, incident)
    return _read(request, session, incident)


@writes.post("/incidents/{incident_id}/resolve", response_model=IncidentRead)
def resolve(incident_id: Id, body: OperatorDecision, request: Request, session: SessionDep,
            principal: PrincipalDep) -> IncidentRead:
    """Shortcut for status=resolved."""
    return move(incident_id, Transition(status="resolved", author=body.author, reason=body.reason), request, session,
                principal)


@writes.post("/incidents/{incident_id}/notes", response_model=IncidentRead, status_code=201)
def note(incident_id: Id, body: NoteCreate, request: Request, session: SessionDep,
         principal: PrincipalDep) -> IncidentRead:
    """Add a human note to the timeline."""
    body = attributed(body, principal)
    incident = get_incident(session, incident_id)
    add_note(session, incident, body.author, body.text)
    session.commit()
    return _read(request, session, incident)


@writes.put("/incidents/{incident_id}/tags/{tag}", response_model=IncidentRead)
def tag(incident_id: Id, tag: Annotated[str, Path(pattern=KEY)], body: TagDecision, request: Request,
        session: SessionDep, principal: PrincipalDep) -> IncidentRead:
    """Add, confirm or reject a taxonomy tag."""
    body = attributed(body, principal)
    incident = get_incident(session, incident_id)
    decide_tag(session, incident, tag, body.confidence, body.author)
    session.commit()
    return _read(request, session, incident)


@router.get("/incidents/{incident_id}/writeup", response_model=WriteupRead)
def read_writeup(incident_id: Id, request: Request, session: SessionDep) -> WriteupRead:
    """The postmortem document; revision 0 is the draft Watchtower pre-filled."""
    return writeup.read(session, _read(request, session, get_incident(session, incident_id)))


@writes.put("/incidents/{incident_id}/writeup", response_model=WriteupRead)
def save_writeup(incident_id: Id, body: WriteupUpdate, request: Request, session: SessionDep,
                 principal: PrincipalDep) -> WriteupRead:
    """Save a new revision; 409 when someone else saved since `base_revision`."""
    body = attributed(body, principal)
    incident = get_incident(session, incident_id)
    writeup.save(session, incident, body.markdown, body.author, body.base_revision)
    session.commit()
    return writeup.read(session, _read(request, session, incident))


@router.get("/incidents/{incident_id}/writeup/revisions", response_model=list[WriteupRead])
def writeup_revisions(incident_id: Id, session: SessionDep) -> list[WriteupRead]:
    """Who changed the write-up, and when (every revision, oldest first)."""
    get_incident(session, incident_id)
    return [WriteupRead(incident_id=r.incident_id, revision=r.revision, markdown=r.markdown, author=r.author,
                        created_at=r.created_at) for r in writeup.history(session, incident_id)]


@writes.post("/incidents/{incident_id}/action-items", response_model=ActionItemRead, status_code=201)
def new_action_item(incident_id: Id, body: ActionItemCreate, session: SessionDep,
                    principal: PrincipalDep) -> ActionItemRead:
    """Add a follow-up with owner and due date; with `guard`, also add its detector to a monitor of the incident's
    model (a 422 names a bad model, monitor, detector or param, and nothing is stored)."""
    if body.guard is not None and not (principal and principal.allows(Role.admin)):
        raise Forbidden("a guard adds a detector to a monitor: this needs the admin role (an action item without "
                        "a guard needs the responder role)")
    body = attributed(body, principal)
    incident = get_incident(session, incident_id)
    item = (add_guard_item if body.guard else add_action_item)(session, incident, body)
    session.commit()
    return action_item_read(session, item)


@writes.patch("/incidents/{incident_id}/action-items/{item_id}", response_model=ActionItemRead)
def edit_action_item(incident_id: Id, item_id: Id, body: ActionItemUpdate, session: SessionDep,
                     principal: PrincipalDep) -> ActionItemRead:
    """Close, reassign or reschedule an action item."""
    body = attributed(body, principal)
    item = update_action_item(session, get_incident(session, incident_id), item_id, body)
    session.commit()
    return action_item_read(session, item)


@router.get("/incidents/{incident_id}/guard-proposals", response_model=list[GuardProposalRead])
def guard_proposals(incident_id: Id, session: SessionDep) -> list[GuardProposalRead]:
    """Guards pre-filled from the incident's evidence; POST one as an action item's `guard` to add it."""
    return proposals_for(session, get_incident(session, incident_id))


@writes.post("/incidents/{incident_id}/similar/{other_id}/dismiss", response_model=IncidentRead)
def not_similar(incident_id: Id, other_id: Id, body: NotSimilar, request: Request,
                session: SessionDep, principal: PrincipalDep) -> IncidentRead:
    """Mark a suggested similar incident as not similar; it is not suggested again."""
    body = attributed(body, principal)
    incident = get_incident(session, incident_id)
    similar.dismiss(session, incident_id, other_id, body.author)
    session.commit()
    return _read(request, session, incident)


@router.get("/incidents/{incident_id}/export", response_model=None,
            responses={200: {"content": {"application/json": {}, "text/markdown": {}}}})
def export(incident_id: Id, request: Request, session: SessionDep,
           format: Literal["json", "markdown"] = "json") -> Response:
    """The whole incident as JSON (with write-up), or its write-up as Markdown."""
    view = _read(request, session, get_incident(session, incident_id))
    document = writeup.read(session, view)
    if format == "markdown":
        return PlainTextResponse(document.markdown, media_type="text/markdown; charset=utf-8")
    body = view.model_dump(mode="json") | {"writeup": document.model_dump(mode="json")}
    return Response(content=__import__("json").dumps(body), media_type="application/json")


@router.get("/analytics", tags=["analytics"])
def analytics(session: SessionDep, confirmed_only: bool = False) -> dict[str, Any]:
    """Incidents by taxonomy category (with parents), per month, the ML / non-ML share, MTTD / MTTA / MTTM / MTTR."""
    return summarize(session, load_index(session), confirmed_only)


@router.get("/taxonomies", tags=["taxonomies"])
def taxonomies(session: SessionDep) -> list[dict[str, Any]]:
    """Every stored taxonomy with its nodes."""
    from postmortems.models import Taxonomy

    return [t.model_dump(mode="json") for t in session.exec(select(Taxonomy).order_by(col(Taxonomy.id))).all()]


@writes.post("/taxonomies", status_code=201, tags=["taxonomies"],
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": TaxonomySpec.model_json_schema()},
                 "application/yaml": {"schema": {"type": "string"}}}}})
async def add(request: Request, session: SessionDep) -> dict[str, Any]:
    """Add a team's own taxonomy (JSON or YAML body); stored as data, no migration needed."""
    raw = await request.body()  # async: the body arrives without holding a thread...
    return await run_in_threadpool(_store_taxonomy, session, raw)  # ...then YAML parsing and the database don't


def _store_taxonomy(session: Session, raw: bytes) -> dict[str, Any]:
    taxonomy = add_taxonomy(session, parse_spec(raw))
    session.commit()
    session.refresh(taxonomy)
    return taxonomy.model_dump(mode="json")


def _read(request: Request, session: Session, incident: Incident) -> IncidentRead:
    return incident_read(session, incident, request.app.state.settings.public_url)


def light_hits(session: Session, hits: list[search_module.Hit], url: str) -> list[Hit]:
    """A page of hits as the API and the search page show them: one query for the models' names, none per hit."""
    from postmortems.service import incident_url
    from watchtower.registry.models import MonitoredModel

    model_ids = {h.incident.model_id for h in hits if h.incident.model_id is not None}
    names = dict(session.exec(select(MonitoredModel.id, MonitoredModel.name)
                              .where(col(MonitoredModel.id).in_(model_ids))).all()) if model_ids else {}
    rows = []
    for hit in hits:
        incident = hit.incident
        assert incident.id is not None
        rows.append(Hit(id=incident.id, title=incident.title, severity=incident.severity, status=incident.status,
                        model=names.get(incident.model_id) if incident.model_id else None, tags=hit.tags,
                        opened_at=incident.opened_at, url=incident_url(url, incident.id), score=hit.score,
                        snippet=str(hit.snippet.html()), snippet_text=hit.snippet.text,
                        highlights=list(hit.snippet.marks)))
    return rows


def observe_durations(request: Request, incident: Incident) -> None:
    """Feed watchtower_incident_stage_seconds when an incident reaches acknowledge, mitigate or resolve."""
    from postmortems.lifecycle import observe_stage

    observe_stage(request.app.state.metrics, incident)
