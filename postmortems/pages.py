"""Server-rendered pages under /postmortems: search, read, file and work an incident. No JavaScript needed.

Reads are open; every form POST needs a signed-in session (watchtower/auth/sessions.py) and its CSRF token,
then redirects back (POST/redirect/GET). Jinja2 autoescapes all user text.
"""

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError

from alerts.outbox import service as outbox
from detectors import registry as detector_registry
from postmortems import search as search_module
from postmortems import similar, writeup
from postmortems.analytics import summarize
from postmortems.diagnosis.guards import add_guard_item, proposals_for
from postmortems.lifecycle import ALLOWED
from postmortems.models import Severity, Status
from postmortems.schemas import ActionItemCreate, ActionItemUpdate, GuardSpec, IncidentCreate
from postmortems.search import search
from postmortems.service import (
    add_action_item,
    add_note,
    decide_tag,
    file_incident,
    get_incident,
    incident_read,
    transition,
    update_action_item,
)
from postmortems.taxonomy import load_index
from watchtower.auth.sessions import PageForms, csrf_token, current_user, require_user
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.edges.links import back_link
from watchtower.errors import Invalid, WatchtowerError, field_error
from watchtower.limits import INT32_MAX, DatetimeBound, Id, SafeStr
from watchtower.policy import holds
from watchtower.templating import templates

TEMPLATES = (Path(__file__).parent / "templates",)
router = APIRouter(prefix="/postmortems", include_in_schema=False, dependencies=PageForms)
PAGE = 20
PAGE_MAX = INT32_MAX // PAGE  # the offset stays an INTEGER
_BOUND: TypeAdapter[datetime] = TypeAdapter(DatetimeBound)
CsrfField = Annotated[str, Form()]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page with the signed-in user and CSRF token every form needs."""
    base = {"user": current_user(request), "csrf": csrf_token(request)}
    return templates(*TEMPLATES).TemplateResponse(request, name, base | context, status_code=status)


def back_to(incident_id: int, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/postmortems/incidents/{incident_id}{anchor}", status_code=303)


def guarded(request: Request, action: Callable[[], Response]) -> Response:
    """Run a form action; a domain error becomes an error page with the reason and a way back."""
    try:
        return action()
    except WatchtowerError as exc:
        return error_page(request, exc.status, exc.title, exc.detail, exc.errors)
    except (ValidationError, ValueError) as exc:  # a form value the API models refuse (length, date, status)
        errors = ([{"field": ".".join(map(str, e["loc"])), "reason": e["msg"]} for e in exc.errors()]
                  if isinstance(exc, ValidationError) else [])
        return error_page(request, 422, "Invalid form", str(exc).splitlines()[0], errors)


def error_page(request: Request, status: int, title: str, detail: str, errors: list[dict[str, str]]) -> HTMLResponse:
    """The HTML twin of a problem-details response, with a way back."""
    return render(request, "error.html", {"title": title, "detail": detail, "errors": errors,
                                          "back": back_link(request, "/postmortems")}, status)


@router.get("", response_class=HTMLResponse)
def search_page(request: Request, session: SessionDep, q: Annotated[SafeStr, Query(max_length=1000)] = "",
                tag: Annotated[list[str], Query()] = [],  # noqa: B006
                severity: Severity | Literal[""] = "", status: Status | Literal[""] = "", model: SafeStr = "",
                opened_from: str = "", opened_to: str = "", sort: Literal["relevance", "date"] = "relevance",
                page: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 1) -> HTMLResponse:
    """Search with facets and highlighted snippets."""
    from postmortems.api import filters_for, light_hits

    index = load_index(session)
    tags = [t for t in tag if t in index.nodes]
    filters = filters_for(session, tags, [model] if model else [],
                          [severity] if severity else [], [status] if status else [],
                          _date(opened_from), _date(opened_to))
    results = search(session, q, filters, index, sort=sort,
                     limit=PAGE, offset=(page - 1) * PAGE)
    url = request.app.state.settings.public_url
    hits = light_hits(session, results.hits, url)  # the API's rows: no incident view per hit
    def link(add_tag: str = "", **changes: str) -> str:
        """This search narrowed by a tag or with parameters replaced; every other filter is kept."""
        kept = [(k, v) for k, v in request.query_params.multi_items()
                if k not in changes and k != "page" and v and (k, v) != ("tag", add_tag)]
        extra = [("tag", add_tag)] if add_tag else []
        return "/postmortems?" + urlencode(kept + extra + [(k, v) for k, v in changes.items() if v])

    return render(request, "search.html", {
        "link": link, "q": q, "tag": tags[0] if tags else "", "severity": severity, "status": status, "model": model,
        "opened_from": opened_from, "opened_to": opened_to, "sort": sort, "page": page,
        "pages": max(1, -(-results.total // PAGE)), "total": results.total, "capped": results.capped, "hits": hits,
        "window": search_module.WINDOW,
        "facets": results.facets, "tree": _tree(index), "index": index,
        "severities": [s.value for s in Severity], "statuses": [s.value for s in Status]})


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(incident_id: Id, request: Request, session: SessionDep) -> HTMLResponse:
    """One incident: status and durations, impact, evidence, tags, write-up, action items, similar, timeline."""
    index = load_index(session)
    row = get_incident(session, incident_id)
    incident = incident_read(session, row, request.app.state.settings.public_url, index)
    document = writeup.read(session, incident)
    moves = sorted(s.value for s in ALLOWED[incident.status])
    return render(request, "incident.html", {
        "incident": incident, "writeup": document, "tree": _tree(index),
        "moves": ["reopen" if m == "open" else m for m in moves],
        "undelivered": outbox.undelivered(session, incident_id),  # alerts that never went out, with a Retry
        "holds": holds.of_incident(session, incident_id, row.model_id, utcnow()),  # automatic actions held
        "revisions": writeup.history(session, incident_id), "statuses": [s.value for s in Status],
        "proposals": proposals_for(session, row), "detectors": detector_registry.names()})


@router.get("/new", response_class=HTMLResponse)
def new_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The form to file an incident by hand."""
    return render(request, "new.html", {"tree": _tree(load_index(session)),
                                        "severities": [s.value for s in Severity]})


@router.post("/new")
def file_from_page(request: Request, session: SessionDep, *, csrf: CsrfField = "", title: Annotated[str, Form()],
                   summary: Annotated[str, Form()] = "", severity: Annotated[str, Form()] = "SEV3",
                   impact: Annotated[str, Form()] = "", models: Annotated[str, Form()] = "",
                   tags: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006
    def act() -> Response:
        author = require_user(request, csrf)
        body = IncidentCreate(title=title, summary=summary, severity=Severity(severity), author=author,
                              impact=impact, models=[m.strip() for m in models.split(",") if m.strip()],
                              tags=[t for t in tags if t])
        incident = file_incident(session, body)
        similar.link_similar(session, incident)
        session.commit()
        assert incident.id is not None
        return back_to(incident.id)

    return guarded(request, act)


@router.post("/incidents/{incident_id}/notes")
def note_from_page(incident_id: Id, request: Request, session: SessionDep, *, csrf: CsrfField = "",
                   text: Annotated[SafeStr, Form(min_length=1, max_length=20_000)]) -> Response:
    def act() -> Response:
        add_note(session, get_incident(session, incident_id), require_user(request, csrf), text)
        session.commit()
        return back_to(incident_id, "#timeline")

    return guarded(request, act)


@router.post("/incidents/{incident_id}/status")
def status_from_page(incident_id: Id, request: Request, session: SessionDep, *, csrf: CsrfField = "",
                     status: Annotated[str, Form()],
                     reason: Annotated[SafeStr, Form(max_length=2000)] = "") -> Response:
    def act() -> Response:
        from postmortems.api import observe_durations

        target = "reopen" if status == "reopen" else Status(status)
        incident = transition(session, get_incident(session, incident_id), target, require_user(request, csrf), reason)
        session.commit()
        observe_durations(request, incident)
        return back_to(incident_id)

    return guarded(request, act)


@router.post("/incidents/{incident_id}/tags")
def tag_from_page(incident_id: Id, request: Request, session: SessionDep, *, csrf: CsrfField = "",
                  tag: Annotated[str, Form()], confidence: Annotated[str, Form()] = "confirmed") -> Response:
    def act() -> Response:
        decide_tag(session, get_incident(session, incident_id), tag,
                   confidence if confidence in ("confirmed", "rejected") else "confirmed", require_user(request, csrf))
        session.commit()
        return back_to(incident_id, "#tags")

    return guarded(request, act)


@router.post("/incidents/{incident_id}/writeup")
def writeup_from_page(incident_id: Id, request: Request, session: SessionDep, *, csrf: CsrfField = "",
                      markdown: Annotated[SafeStr, Form(min_length=1, max_length=500_000)],
                      base_revision: Annotated[int, Form(ge=0, le=INT32_MAX)]) -> Response:
    def act() -> Response:
        writeup.save(session, get_incident(session, incident_id), markdown, require_user(request, csrf), base_revision)
        session.commit()
        return back_to(incident_id, "#writeup")

    return guarded(request, act)


@router.post("/incidents/{incident_id}/action-items")
def action_item_from_page(incident_id: Id, request: Request, session: SessionDep, *, csrf: CsrfField = "",
                          title: Annotated[str, Form(min_length=1)], owner: Annotated[str, Form()] = "",
                          due: Annotated[str, Form()] = "") -> Response:
    def act() -> Response:
        body = ActionItemCreate(author=require_user(request, csrf), title=title, owner=owner or None,
                                due=date.fromisoformat(due) if due else None)
        add_action_item(session, get_incident(session, incident_id), body)
        session.commit()
        return back_to(incident_id, "#action-items")

    return guarded(request, act)


@router.post("/incidents/{incident_id}/guards")
def guard_from_page(incident_id: Id, request: Request, session: SessionDep, *, csrf: CsrfField = "",
                    title: Annotated[str, Form(min_length=1)], monitor: Annotated[str, Form(min_length=1)],
                    detector: Annotated[str, Form(min_length=1)], params: Annotated[str, Form()] = "{}",
                    model: Annotated[str, Form()] = "") -> Response:
    """An action item that is a guard: its detector goes on the monitor now (see postmortems/diagnosis/guards.py)."""
    def act() -> Response:
        author = require_user(request, csrf)
        try:
            parsed = json.loads(params or "{}")
        except json.JSONDecodeError as exc:
            raise Invalid("the params are not JSON", errors=[field_error("params", str(exc))]) from exc
        if not isinstance(parsed, dict):
            raise Invalid("the params are not a JSON object", errors=[field_error("params", "must be an object")])
        guard = GuardSpec(model=model or None, monitor=monitor, detector=detector, params=parsed)
        add_guard_item(session, get_incident(session, incident_id), ActionItemCreate(author=author, title=title,
                                                                                     guard=guard))
        session.commit()
        return back_to(incident_id, "#action-items")

    return guarded(request, act)


@router.post("/incidents/{incident_id}/action-items/{item_id}")
def action_item_status_from_page(incident_id: Id, item_id: Id, request: Request, session: SessionDep,
                                 *, csrf: CsrfField = "", status: Annotated[str, Form()]) -> Response:
    def act() -> Response:
        body = ActionItemUpdate(author=require_user(request, csrf), status=status)  # type: ignore[arg-type]
        update_action_item(session, get_incident(session, incident_id), item_id, body)
        session.commit()
        return back_to(incident_id, "#action-items")

    return guarded(request, act)


@router.post("/incidents/{incident_id}/similar/{other_id}/dismiss")
def dismiss_from_page(incident_id: Id, other_id: Id, request: Request, session: SessionDep,
                      *, csrf: CsrfField = "") -> Response:
    def act() -> Response:
        similar.dismiss(session, incident_id, other_id, require_user(request, csrf))
        session.commit()
        return back_to(incident_id, "#similar")

    return guarded(request, act)


@router.post("/incidents/{incident_id}/outbox/{message_id}/retry")
def retry_alert_from_page(incident_id: int, message_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
                          request: Request, session: SessionDep, *, csrf: CsrfField = "") -> Response:
    def act() -> Response:
        outbox.retry_message(session, message_id, author=require_user(request, csrf), reason=None, now=utcnow(),
                             incident_id=incident_id)
        session.commit()
        return back_to(incident_id, "#alerts")

    return guarded(request, act)


@router.get("/analytics", response_class=HTMLResponse)
def analytics_page(request: Request, session: SessionDep, confirmed_only: bool = False) -> HTMLResponse:
    """What breaks most, ML or not, and how fast we detect and recover."""
    index = load_index(session)
    labels = {key: index.label(key) for key in index.nodes}
    return render(request, "analytics.html", {"summary": summarize(session, index, confirmed_only), "labels": labels})


@router.get("/login")
def login_page() -> RedirectResponse:
    """Sign-in moved to /auth/login (kept for bookmarks)."""
    return RedirectResponse("/auth/login", status_code=308)


def _tree(index: Any) -> list[tuple[str, str, int]]:
    """(key, label, depth) for every taxonomy node, parents before children, for indented selects."""
    out: list[tuple[str, str, int]] = []

    def walk(key: str, depth: int) -> None:
        out.append((key, index.label(key), depth))
        for child in index.children.get(key, []):
            walk(child, depth + 1)

    for key, node in index.nodes.items():
        if not node.get("parent"):
            walk(key, 0)
    return out


def _date(value: str) -> datetime | None:
    try:
        return _BOUND.validate_python(value) if value else None
    except ValidationError:  # the search form ignores a date it cannot read
        return None
