"""Server-side page sessions: a random id in an HttpOnly cookie, only its SHA-256 in the database.

Logging out deletes the row; deactivating a person or changing their password deletes all of theirs, so an old
cookie stops working at once. `session_user` is the one way to resolve who is signed in on a page;
`current_user`, `csrf_token` and `require_user` are what the page modules call, and `PageForms` is the router
dependency that refuses any form POST without a session and its CSRF token before the route runs.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import delete
from sqlmodel import Session, col, select

from watchtower.auth import csrf
from watchtower.auth.models import User
from watchtower.auth.page_refusal import PageRefused, secure_cookies
from watchtower.auth.session_models import WebSession
from watchtower.clock import utcnow
from watchtower.settings import Settings

COOKIE, SECURE_COOKIE = "watchtower_session", "__Host-watchtower_session"  # __Host-: only ever from this origin
SIGN_IN = "sign in at /auth/login to change things from the pages"


def cookie_name(settings: Settings) -> str:
    return SECURE_COOKIE if secure_cookies(settings) else COOKIE


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(session: Session, user: User, settings: Settings, now: datetime, address: str = "") -> str:
    """Store a new session for `user` (flushed) and return its id, for the cookie only."""
    assert user.id is not None
    session_id = secrets.token_urlsafe(32)
    session.execute(delete(WebSession).where(col(WebSession.expires_at) <= now))  # keep the table small
    session.add(WebSession(key_hash=_digest(session_id), user_id=user.id, created_at=now,
                           expires_at=now + timedelta(hours=settings.session_ttl_hours), address=address[:64]))
    session.flush()
    return session_id


def end_session(session: Session, session_id: str) -> None:
    """Log out: the session's row goes, so its cookie no longer signs anyone in."""
    session.execute(delete(WebSession).where(col(WebSession.key_hash) == _digest(session_id)))


def end_sessions_of(session: Session, user_id: int) -> None:
    """Sign a person out everywhere (deactivated, or their password changed)."""
    session.execute(delete(WebSession).where(col(WebSession.user_id) == user_id))


def session_id_of(request: Request) -> str | None:
    """The session id the browser sent, if it looks like one of ours."""
    raw = request.cookies.get(cookie_name(request.app.state.settings), "")
    return raw if 20 <= len(raw) <= 100 else None


def session_user(request: Request, session: Session) -> User | None:
    """The active person signed in on this request's session cookie, or None (THE way pages resolve the user)."""
    session_id = session_id_of(request)
    if session_id is None:
        return None
    return session.exec(select(User).join(WebSession, col(WebSession.user_id) == col(User.id)).where(
        WebSession.key_hash == _digest(session_id), col(WebSession.expires_at) > utcnow(), col(User.active))).first()


def set_session_cookie(response: Response, settings: Settings, session_id: str) -> None:
    response.set_cookie(cookie_name(settings), session_id, max_age=int(settings.session_ttl_hours * 3600),
                        httponly=True, samesite="lax", secure=secure_cookies(settings), path="/")


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings), httponly=True, samesite="lax", secure=secure_cookies(settings),
                           path="/")


@dataclass(frozen=True)
class PageIdentity:
    """Who is signed in on a page request, and the CSRF token their forms carry ("" when signed out)."""

    handle: str | None
    csrf: str


def page_identity(request: Request) -> PageIdentity:
    """Resolved once per request (cached on request.state) with a short session of its own."""
    cached: PageIdentity | None = getattr(request.state, "page_identity", None)
    if cached is None:
        with Session(request.app.state.engine) as session:
            user = session_user(request, session)
        session_id = session_id_of(request)
        cached = PageIdentity(user.handle, csrf.session_token(session_id or "")) if user else PageIdentity(None, "")
        request.state.page_identity = cached
    return cached


def current_user(request: Request) -> str | None:
    """The signed-in person's handle, or None."""
    return page_identity(request).handle


def csrf_token(request: Request) -> str:
    """The hidden form field that proves a POST came from one of our pages in this session."""
    return page_identity(request).csrf


def require_user(request: Request, token: str) -> str:
    """The signed-in handle for a form POST; PageRefused without a session or with another CSRF token."""
    identity = page_identity(request)
    if identity.handle is None:
        raise PageRefused(SIGN_IN)
    if not csrf.matches(token, identity.csrf):
        raise PageRefused("the form's CSRF token does not match your session; reload the page")
    return identity.handle


async def check_page_form(request: Request) -> None:
    """Router dependency of every page module: a POST needs the session and its CSRF token, whatever the route."""
    if request.method != "POST":
        return
    form = await request.form()
    sent = form.get(csrf.FIELD)
    await run_in_threadpool(require_user, request, sent if isinstance(sent, str) else "")


PageForms = [Depends(check_page_form)]
