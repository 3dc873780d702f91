"""Request bodies bounded while they arrive: a declared Content-Length over the limit is refused before a byte
of the body is read, and a chunked body is counted as it streams and refused the moment it passes the limit.

JSON (and every other non-multipart) body: WATCHTOWER_MAX_BODY_BYTES. Multipart uploads: WATCHTOWER_MAX_UPLOAD_BYTES
for the whole request; Starlette spools each file to a temporary file as it arrives, so memory stays flat.
"""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchtower.errors import problem


class BodyTooLarge(HTTPException):
    """Raised from `receive` inside the app, so the request's own handlers answer with problem details."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes ({setting})")


class BodyLimit:
    """ASGI middleware: 413 problem details for bodies over their limit, without reading them first."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes, self.max_upload_bytes = max_body_bytes, max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get("content-type", "").lower().startswith("multipart/"):
            limit, setting = self.max_upload_bytes, "WATCHTOWER_MAX_UPLOAD_BYTES"
        else:
            limit, setting = self.max_body_bytes, "WATCHTOWER_MAX_BODY_BYTES"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            # Answered at once: the client learns before it sends the rest, and nothing is buffered.
            response = problem(413, "Content too large", str(BodyTooLarge(limit, setting).detail),
                               errors=[{"field": "body", "reason": f"larger than {limit} bytes"}])
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        await self.app(scope, counted, send)
