"""Trusted Host names: a request naming another host is refused with 400 before any route runs, so nothing
(a slash redirect, an absolute link) can be built from a Host header an attacker chose."""

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from watchtower.errors import problem
from watchtower.settings import Settings

LOCAL = ("localhost", "127.0.0.1", "::1")
# Probes and scrapers name the pod or node address, which no setting knows; these routes build no links.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


def trusted_hosts(settings: Settings) -> frozenset[str]:
    """localhost, the loopback addresses, the host of WATCHTOWER_PUBLIC_URL and WATCHTOWER_ALLOWED_HOSTS."""
    extra = [h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()]
    public = (urlsplit(settings.public_url).hostname or "").lower()
    return frozenset([*LOCAL, *extra] + ([public] if public else []))


def host_name(header: str) -> str:
    """The name in a Host header, without its port ("[::1]:8000" -> "::1")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed(name: str, hosts: frozenset[str]) -> bool:
    """Exact names, "*.example.com" for subdomains, or "*" for any."""
    if not name:
        return False
    return "*" in hosts or name in hosts or any(
        h.startswith("*.") and name.endswith(h[1:]) for h in hosts)


class TrustedHosts:
    """ASGI middleware refusing requests whose Host header names a host not in the settings."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if allowed(host_name(header), self.hosts):
            await self.app(scope, receive, send)
            return
        response = problem(400, "Bad request", "the Host header names a host this server does not answer to; "
                           "add it to WATCHTOWER_ALLOWED_HOSTS if it is one of ours")
        await response(scope, receive, send)
