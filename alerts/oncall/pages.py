"""Server-rendered on-call pages: who is on call now and next, two weeks of shifts per schedule, and a form to
add an override (signed in, with the CSRF token, like the postmortem pages). No JavaScript needed."""

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from alerts.oncall import schedules, service
from alerts.oncall.layering import Shift, gaps
from alerts.oncall.models import Schedule
from alerts.oncall.rotation import local, to_instant
from alerts.oncall.schemas import OverrideCreate
from watchtower.auth.models import User
from watchtower.auth.sessions import PageForms, csrf_token, current_user, require_user
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import WatchtowerError
from watchtower.limits import Id
from watchtower.templating import templates

HERE = Path(__file__).parent
# The postmortem templates give the shared layout (base.html) and the error page.
TEMPLATES = (HERE / "templates", HERE.parents[1] / "postmortems" / "templates")
router = APIRouter(prefix="/oncall", include_in_schema=False, dependencies=PageForms)
VIEW_DAYS = 14
NEXT_WITHIN = timedelta(days=35)
Text = Annotated[str, Form()]


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page with the signed-in user and the CSRF token every form needs."""
    base = {"user": current_user(request), "csrf": csrf_token(request)}
    return templates(*TEMPLATES).TemplateResponse(request, name, base | context, status_code=status)


def when(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as the schedule's people read it: 'Sun 29 Mar 09:00 CEST'."""
    return moment.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def _names(session: Session) -> dict[str, str]:
    return dict(session.exec(select(User.handle, User.display_name)).all())


def now_and_next(session: Session, schedule: Schedule, now: datetime) -> tuple[Shift | None, Shift | None]:
    """The shift under way at `now` and the next one after it (within NEXT_WITHIN)."""
    current = schedules.shift_now(session, schedule, now)
    after = current.end if current else now
    upcoming = schedules.final_shifts(session, schedule, after, after + NEXT_WITHIN)
    return current, next((s for s in upcoming if s.start >= after), None)


@router.get("", response_class=HTMLResponse)
def oncall_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Who is on call now and next, for every schedule."""
    now = utcnow()
    rows = []
    for schedule in session.exec(select(Schedule).order_by(col(Schedule.name))).all():
        current, following = now_and_next(session, schedule, now)
        rows.append({"schedule": schedule, "zone": ZoneInfo(schedule.time_zone), "now": current,
                     "next": following})
    return render(request, "oncall.html", {"rows": rows, "names": _names(session), "when": when})


def _day_bars(shifts: list[Shift], days: list[date], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Each day of the view with its shifts as bars (left and width in % of the day)."""
    out = []
    for day in days:
        begins = to_instant(datetime.combine(day, time()), zone)
        ends = to_instant(datetime.combine(day + timedelta(days=1), time()), zone)
        length = (ends - begins).total_seconds()
        bars = [{"shift": s, "left": (max(s.start, begins) - begins).total_seconds() / length * 100,
                 "width": (min(s.end, ends) - max(s.start, begins)).total_seconds() / length * 100}
                for s in shifts if s.start < ends and s.end > begins]
        out.append({"day": day, "bars": bars})
    return out


@router.get("/schedules/{schedule_id}", response_class=HTMLResponse)
def schedule_page(schedule_id: Id, request: Request, session: SessionDep) -> HTMLResponse:
    """Two weeks of final shifts from today (overrides marked, gaps shown), the layers, and the override form."""
    schedule = schedules.get_schedule(session, schedule_id)
    zone, now = ZoneInfo(schedule.time_zone), utcnow()
    today = local(now, zone).date()
    days = [today + timedelta(days=i) for i in range(VIEW_DAYS)]
    start = to_instant(datetime.combine(today, time()), zone)
    end = to_instant(datetime.combine(today + timedelta(days=VIEW_DAYS), time()), zone)
    shifts = schedules.final_shifts(session, schedule, start, end)
    handles = sorted({s.handle for s in shifts})
    overrides = [service.override_read(session, o) for o in service.overrides_between(session, schedule_id, now, end)]
    people = session.exec(select(User).where(col(User.active)).order_by(col(User.handle))).all()
    return render(request, "schedule.html", {
        "schedule": schedule, "zone": zone, "when": when, "names": _names(session),
        "read": service.schedule_read(session, schedule), "shifts": shifts, "gaps": gaps(shifts, start, end),
        "days": _day_bars(shifts, days, zone), "colour": {h: i % 8 for i, h in enumerate(handles)},
        "overrides": overrides, "people": people, "now": schedules.shift_now(session, schedule, now),
        "default_start": local(now, zone).strftime("%Y-%m-%dT%H:00")})


@router.post("/schedules/{schedule_id}/overrides")
def override_from_page(schedule_id: Id, request: Request, session: SessionDep, *, csrf: Text = "",
                       user: Text = "", replaces: Text = "", start: Text = "", end: Text = "",
                       reason: Text = "") -> Response:
    """Add an override; times are wall-clock times in the schedule's zone, as the form shows them."""
    try:
        author = require_user(request, csrf)
        zone = ZoneInfo(schedules.get_schedule(session, schedule_id).time_zone)
        body = OverrideCreate(user=user, replaces=replaces or None, start=_local_moment(start, zone, "start"),
                              end=_local_moment(end, zone, "end"), author=author, reason=reason)
        service.save_override(session, schedule_id, None, body)
        session.commit()
    except WatchtowerError as exc:
        return _error(request, exc.status, exc.title, exc.detail, exc.errors)
    except ValidationError as exc:
        errors = [{"field": ".".join(map(str, e["loc"])), "reason": e["msg"]} for e in exc.errors()]
        return _error(request, 422, "Invalid form", "; ".join(f"{e['field']}: {e['reason']}" for e in errors), errors)
    return RedirectResponse(f"/oncall/schedules/{schedule_id}#overrides", status_code=303)


class _FormError(WatchtowerError):
    status, title = 422, "Invalid form"


def _local_moment(value: str, zone: ZoneInfo, field: str) -> datetime:
    """A datetime-local form value (YYYY-MM-DDTHH:MM in the schedule's zone) as a UTC instant."""
    try:
        return to_instant(datetime.fromisoformat(value).replace(tzinfo=None), zone)
    except ValueError as exc:
        reason = "give a date and time (YYYY-MM-DDTHH:MM)"
        raise _FormError(f"{field}: {reason}", errors=[{"field": field, "reason": reason}]) from exc


def _error(request: Request, status: int, title: str, detail: str, errors: list[dict[str, str]]) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "detail": detail, "errors": errors,
                                          "back": request.headers.get("referer", "/oncall")}, status)
