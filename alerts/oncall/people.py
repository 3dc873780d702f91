"""The people page: who Watchtower knows (handle, Slack id, time zone and their local time now), and a form to
add someone (signed in, with the CSRF token, like the other pages)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import col, select

from alerts.oncall.pages import Text, render
from watchtower.auth.models import User
from watchtower.auth.sessions import PageForms, require_user
from watchtower.auth.users import UserCreate, create_user
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import WatchtowerError

router = APIRouter(prefix="/oncall/people", include_in_schema=False, dependencies=PageForms)


def local_time(now: datetime, zone: str) -> str:
    """What the clock says where the person is: 'Sat 14:05 CET'."""
    return now.astimezone(ZoneInfo(zone)).strftime("%a %H:%M %Z")


@router.get("", response_class=HTMLResponse)
def people_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Everyone, by handle, with their local time now."""
    people = session.exec(select(User).order_by(col(User.handle))).all()
    return render(request, "people.html", {"people": people, "local_time": local_time, "now": utcnow()})


@router.post("")
def add_person(request: Request, session: SessionDep, *, csrf: Text = "", handle: Text = "", display_name: Text = "",
               email: Text = "", slack_user_id: Text = "", time_zone: Text = "UTC") -> Response:
    """Add a person from the form; a mistake answers the error page naming the field."""
    try:
        require_user(request, csrf)
        body = UserCreate(handle=handle, display_name=display_name, email=email or None,
                          slack_user_id=slack_user_id or None, time_zone=time_zone)
        create_user(session, body)
        session.commit()
    except WatchtowerError as exc:
        return render(request, "error.html", {"title": exc.title, "detail": exc.detail, "errors": exc.errors,
                                              "back": "/oncall/people"}, exc.status)
    except ValidationError as exc:
        errors = [{"field": ".".join(map(str, e["loc"])), "reason": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return render(request, "error.html", {"title": "Invalid form", "detail": detail, "errors": errors,
                                              "back": "/oncall/people"}, 422)
    return RedirectResponse("/oncall/people", status_code=303)
