"""Secrets are write-only: a URL is shown without what may authenticate it (user info, query values, fragment,
and the path after its first segment: Slack-style webhooks carry their secret in the path)."""

from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

MASK = "***"


def redact_url(url: str | None) -> str | None:
    """`https://user:pw@host/hooks/T1/B2?token=abc#x` -> `https://***@host/hooks/***?token=***#***`: enough to
    recognise the endpoint, nothing to call it with. An unparsable URL is masked whole."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    netloc = (f"{MASK}@" if parts.username or parts.password else "") + host + port
    query = urlencode([(key, MASK) for key, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    if parts.query and not query:
        query = MASK  # a bare secret with no key=value shape
    first, _, rest = parts.path.lstrip("/").partition("/")
    path = f"/{first}/{MASK}" if rest else parts.path
    return SplitResult(parts.scheme, netloc, path, query, MASK if parts.fragment else "").geturl()
