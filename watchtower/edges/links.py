"""Links and redirects that stay on this site: only paths, never a URL a request header or form field chose."""

from urllib.parse import urlsplit

from fastapi import Request


def local_path(target: str | None, default: str) -> str:
    """`target` if it is a path on this site ("/x?y"), else `default`: no scheme, no host, no "//" or "\\" trick."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 0x21 or c == "\\" for c in target):  # control characters and backslashes: browsers differ
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def back_link(request: Request, default: str) -> str:
    """Where "Go back" leads: the Referer's path when it is this site's (same Host), else `default`.

    Only the path and query are kept, so the link is relative whatever the Referer said; a javascript:, data:
    or foreign URL is never used.
    """
    referer = request.headers.get("referer", "")
    parts = urlsplit(referer)
    host = request.headers.get("host", "")
    if parts.scheme not in ("http", "https") or not host or parts.netloc.lower() != host.lower():
        return default
    return local_path(parts.path + (f"?{parts.query}" if parts.query else ""), default)
