"""Security headers on every response: a Content-Security-Policy without inline script, no MIME sniffing,
no Referer leaking off-site, no framing; Strict-Transport-Security when served over https."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Scripts and stylesheets only from this origin (pages.css, docs.js and Swagger UI's bundle under /static).
# Style *attributes* stay allowed: the on-call page places its shift bars with them, and they cannot run code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
           "Cross-Origin-Opener-Policy": "same-origin"}
HSTS = "max-age=31536000"


class SecurityHeaders:
    """ASGI middleware adding HEADERS (and HSTS when `https`) to responses that do not set them themselves."""

    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.headers = HEADERS | ({"Strict-Transport-Security": HSTS} if https else {})
        # Encoded once: every response gets them, and a MutableHeaders per response scanned its list per name.
        self._raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                message["headers"] = headers + [(n, v) for n, v in self._raw if n not in present]
            await send(message)

        await self.app(scope, receive, with_headers)
