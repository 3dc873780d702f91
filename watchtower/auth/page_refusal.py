"""What the app's edges (watchtower/edges/wiring.py) need of page sessions when the app is built: the refusal of
a page form and whether cookies are Secure. Apart from sessions.py, whose session table then loads with the
first signed-in page or sign-in, not at start-up."""

from urllib.parse import urlsplit

from watchtower.errors import Unauthorized
from watchtower.settings import Settings


class PageRefused(Unauthorized):
    """A page form POST without a session or with the wrong CSRF token (answered with the HTML error page)."""


def secure_cookies(settings: Settings) -> bool:
    """Cookies get the Secure flag when the server is reached over https."""
    return urlsplit(settings.public_url).scheme == "https"
