"""The silences page: active, pending and expired silences, a form to add one, and an expire button.

Server-rendered like the postmortem pages: reads are open; the form POSTs need a signed-in session and its
CSRF token (watchtower/auth/sessions.py), then redirect back (POST/redirect/GET). Times are UTC.
"""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from alerts.silences.matchers import LABELS, OPS, Matcher
from alerts.silences.models import State
from alerts.silences.service import SilenceCreate, create_silence, expire_silence, list_silences, matchers_of
from postmortems.pages import guarded
from watchtower.auth.sessions import PageForms, csrf_token, current_user, require_user
from watchtower.clock import to_utc, utcnow
from watchtower.deps import SessionDep
from watchtower.errors import Invalid, field_error
from watchtower.templating import templates

HERE = Path(__file__).parent
TEMPLATES = (HERE / "templates", HERE.parents[1] / "postmortems" / "templates")
router = APIRouter(prefix="/oncall/silences", include_in_schema=False, dependencies=PageForms)
PAGE_URL = "/oncall/silences"
ROWS = 3  # matcher rows on the form; empty ones are ignored
Text = Annotated[str, Form()]


@router.get("", response_class=HTMLResponse)
def silences_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Active and pending silences, the 50 latest expired ones, and (signed in) the form to add one."""
    now = utcnow()
    limits: dict[State, int] = {"active": 500, "pending": 500, "expired": 50}
    shown = {state: [(s, [str(m) for m in matchers_of(s)]) for s in list_silences(session, now, state, limit)]
             for state, limit in limits.items()}
    context: dict[str, Any] = {"user": current_user(request), "csrf": csrf_token(request), "now": now,
                               "silences": shown, "labels": LABELS, "ops": list(OPS), "rows": range(ROWS)}
    return templates(*TEMPLATES).TemplateResponse(request, "silences.html", context)


@router.post("")
def add_from_page(request: Request, session: SessionDep, *, csrf: Text = "", name: Annotated[list[str], Form()] = [],  # noqa: B006
                  op: Annotated[list[str], Form()] = [], value: Annotated[list[str], Form()] = [],  # noqa: B006
                  starts_at: Text = "", hours: Text = "2", comment: Text = "") -> Response:
    def act() -> Response:
        author = require_user(request, csrf)
        matchers = [_matcher(i, n, o, v) for i, (n, o, v) in enumerate(zip(name, op, value, strict=False)) if v]
        now = utcnow()
        start = to_utc(datetime.fromisoformat(starts_at)) if starts_at else now
        try:
            length = float(hours)
        except ValueError as exc:
            raise Invalid(f"hours must be a number, not {hours!r}",
                          errors=[field_error("hours", "not a number")]) from exc
        body = SilenceCreate(matchers=matchers, starts_at=start, ends_at=start + timedelta(hours=length),
                             created_by=author, comment=comment)
        create_silence(session, body, now)
        session.commit()
        return RedirectResponse(PAGE_URL, status_code=303)

    return guarded(request, act)


@router.post("/{silence_id}/expire")
def expire_from_page(silence_id: int, request: Request, session: SessionDep, *, csrf: Text = "") -> Response:
    def act() -> Response:
        expire_silence(session, silence_id, require_user(request, csrf), utcnow())
        session.commit()
        return RedirectResponse(PAGE_URL, status_code=303)

    return guarded(request, act)


def _matcher(index: int, name: str, op: str, value: str) -> Matcher:
    """A form row as a matcher; a bad name, operator or regex is a 422 naming the row."""
    try:
        return Matcher.of(name, op, value)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise Invalid(f"matcher {index + 1} ({name}{op}{value!r}): {reason}",
                      errors=[field_error(f"matchers.{index}", reason)]) from exc
    except ValueError as exc:
        reason = str(exc)
        raise Invalid(f"matcher {index + 1} ({name}{op}{value!r}): {reason}",
                      errors=[field_error(f"matchers.{index}", reason)]) from exc
