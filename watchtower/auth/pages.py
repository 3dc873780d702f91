"""The sign-in, sign-out and change-password pages (form POSTs, then redirect: POST/redirect/GET)."""

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from watchtower.auth import csrf
from watchtower.auth.page_refusal import PageRefused, secure_cookies
from watchtower.auth.passwords import MIN_LENGTH
from watchtower.auth.sessions import (
    PageForms,
    clear_session_cookie,
    csrf_token,
    current_user,
    require_user,
    session_id_of,
    set_session_cookie,
    start_session,
)
from watchtower.auth.sessions import end_session as end_session_row
from watchtower.auth.signin import WRONG, authenticate, client_address, set_password
from watchtower.auth.throttle import Throttled
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.edges.links import local_path
from watchtower.errors import WatchtowerError
from watchtower.limits import SafeStr
from watchtower.templating import templates

HERE = Path(__file__).parent
# The postmortem templates give the shared layout (base.html).
TEMPLATES = (HERE / "templates", HERE.parents[1] / "postmortems" / "templates")
router = APIRouter(prefix="/auth", include_in_schema=False)
HOME = "/postmortems"
Text = Annotated[str, Form(max_length=1024)]


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200,
            headers: dict[str, str] | None = None) -> HTMLResponse:
    base = {"user": current_user(request), "csrf": csrf_token(request)}
    return templates(*TEMPLATES).TemplateResponse(request, name, base | context, status_code=status, headers=headers)


def _login_form(request: Request, error: str | None = None, status: int = 200, *, handle: str = "",
                next_path: str = HOME, headers: dict[str, str] | None = None) -> HTMLResponse:
    token = csrf.signin_token(request)
    response = _render(request, "login.html", {"error": error, "signin_csrf": token, "handle": handle,
                                               "next": local_path(next_path, HOME)}, status, headers)
    csrf.remember_signin(response, token, secure_cookies(request.app.state.settings))
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = HOME) -> HTMLResponse:  # noqa: A002 (the conventional name)
    """The sign-in form; `next` (a path on this site) is where a successful sign-in leads."""
    return _login_form(request, next_path=next)


@router.post("/login")
def login(request: Request, session: SessionDep, handle: Annotated[SafeStr, Form(max_length=200)] = "",
          password: Text = "", csrf_field: Annotated[str, Form(alias="csrf")] = "",
          next: Annotated[str, Form(max_length=2000)] = HOME) -> Response:  # noqa: A002
    """Check the username and password (throttled per account and address), start a session, go on."""
    if not csrf.signin_matches(request, csrf_field):
        raise PageRefused("the sign-in form expired or came from another site; reload the page and sign in again")
    settings, now = request.app.state.settings, utcnow()
    try:
        user = authenticate(session, handle, password, client_address(request.client and request.client.host),
                            settings, now)
    except Throttled as exc:
        return _login_form(request, f"Too many failed sign-ins: {exc}.", 429, handle=handle, next_path=next,
                           headers={"Retry-After": str(exc.retry_after_s)})
    if user is None:
        session.commit()  # the failure counts
        return _login_form(request, f"Sign-in failed: {WRONG}.", 401, handle=handle, next_path=next)
    session_id = start_session(session, user, settings, now, client_address(request.client and request.client.host))
    session.commit()
    response = RedirectResponse(local_path(next, HOME), status_code=303)
    set_session_cookie(response, settings, session_id)
    response.delete_cookie(csrf.SIGNIN_COOKIE, path="/auth")
    return response


@router.post("/logout", dependencies=PageForms)
def logout(request: Request, session: SessionDep) -> Response:
    """End this browser's session (its row is deleted: the cookie is worthless even if kept)."""
    session_id = session_id_of(request)
    if session_id:
        end_session_row(session, session_id)
        session.commit()
    response = RedirectResponse(HOME, status_code=303)
    clear_session_cookie(response, request.app.state.settings)
    return response


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, done: bool = False) -> Response:
    """The change-password form (signed in)."""
    if current_user(request) is None:
        return RedirectResponse("/auth/login?next=/auth/password", status_code=303)
    return _render(request, "password.html", {"done": done, "error": None, "min_length": MIN_LENGTH})


@router.post("/password", dependencies=PageForms)
def change_password_from_page(request: Request, session: SessionDep, current_password: Text = "",
                              new_password: Text = "", csrf_field: Annotated[str, Form(alias="csrf")] = "") -> Response:
    """Check the current password, store the new one, sign out every session, and sign this browser in again."""
    handle = require_user(request, csrf_field)
    settings, now = request.app.state.settings, utcnow()
    address = client_address(request.client and request.client.host)
    context: dict[str, Any] = {"done": False, "min_length": MIN_LENGTH}
    try:
        user = authenticate(session, handle, current_password, address, settings, now)
    except Throttled as exc:
        return _render(request, "password.html", context | {"error": f"Too many failed attempts: {exc}."}, 429,
                       {"Retry-After": str(exc.retry_after_s)})
    if user is None:
        session.commit()
        return _render(request, "password.html", context | {"error": "The current password is wrong."}, 401)
    try:
        set_password(session, user, new_password, now, field="new_password")
    except WatchtowerError as exc:
        session.rollback()
        return _render(request, "password.html", context | {"error": exc.detail}, exc.status)
    session_id = start_session(session, user, settings, now, address)
    session.commit()
    response = RedirectResponse("/auth/password?done=true", status_code=303)
    set_session_cookie(response, settings, session_id)
    return response


