"""CSRF tokens for the pages' forms: one per session, and a double-submit token for the sign-in form itself
(which has no session yet, but must not let another site sign a browser into the attacker's account)."""

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SIGNIN_COOKIE = "watchtower_signin"
FIELD = "csrf"  # the hidden form field every page form carries


def session_token(session_id: str) -> str:
    """The CSRF token of a session: derived from its id (which only that browser knows), never stored."""
    return hmac.new(session_id.encode(), b"csrf", hashlib.sha256).hexdigest()


def matches(sent: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected token never matches."""
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def signin_token(request: Request) -> str:
    """The sign-in form's token: the browser's sign-in cookie, or a new one (set it with `remember_signin`)."""
    current = request.cookies.get(SIGNIN_COOKIE, "")
    return current if 20 <= len(current) <= 100 else secrets.token_urlsafe(32)


def remember_signin(response: Response, token: str, secure: bool) -> None:
    """Set the sign-in cookie the form's hidden field must repeat (SameSite=Strict: other sites cannot send it)."""
    response.set_cookie(SIGNIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", secure=secure,
                        path="/auth")


def signin_matches(request: Request, sent: str) -> bool:
    """Whether the sign-in form's hidden field repeats this browser's sign-in cookie."""
    return matches(sent, request.cookies.get(SIGNIN_COOKIE, ""))
