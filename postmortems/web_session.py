"""Sign-in for the pages: forms cannot send a bearer token, so the token is exchanged for a signed cookie.

The cookie holds the person's name and an HMAC of it keyed by WATCHTOWER_API_TOKEN; every form
carries a CSRF token derived the same way, and the cookie is SameSite=Strict and HttpOnly.
"""

import base64
import hashlib
import hmac

from fastapi import Request

from watchtower.errors import Unauthorized

COOKIE = "watchtower_session"


def _key(request: Request) -> bytes | None:
    token = request.app.state.settings.api_token
    return token.get_secret_value().encode() if token else None


def _sign(key: bytes, purpose: str, name: str) -> str:
    return hmac.new(key, f"{purpose}:{name}".encode(), hashlib.sha256).hexdigest()


def check_token(request: Request, token: str) -> bool:
    """Whether a pasted token is the server's API token."""
    key = _key(request)
    return key is not None and hmac.compare_digest(token.encode(), key)


def cookie_for(request: Request, name: str) -> str:
    """The cookie value that signs `name` in."""
    key = _key(request)
    assert key is not None
    encoded = base64.urlsafe_b64encode(name.encode()).decode()
    return f"{encoded}.{_sign(key, 'session', name)}"


def current_user(request: Request) -> str | None:
    """The signed-in name, or None."""
    key, raw = _key(request), request.cookies.get(COOKIE, "")
    if key is None or "." not in raw:
        return None
    encoded, signature = raw.rsplit(".", 1)
    try:
        name = base64.urlsafe_b64decode(encoded.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return name if hmac.compare_digest(signature, _sign(key, "session", name)) else None


def csrf_token(request: Request) -> str:
    """The hidden form field that proves a POST came from our own page."""
    key, user = _key(request), current_user(request)
    return _sign(key, "csrf", user) if key and user else ""


def require_user(request: Request, csrf: str) -> str:
    """The signed-in name for a form POST; Unauthorized without a session or with a bad CSRF token."""
    user = current_user(request)
    if user is None:
        raise Unauthorized("sign in at /postmortems/login to change incidents from the pages")
    if not hmac.compare_digest(csrf, csrf_token(request)):
        raise Unauthorized("the form's CSRF token does not match your session; reload the page")
    return user
