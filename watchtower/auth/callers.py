"""Bearer tokens' callers kept in memory, so a request with a known token pays no database read (nor a thread
hop) in the access check.

An entry lives WATCHTOWER_AUTH_CACHE_S: a token revoked, or an owner deactivated or given another role, by
another process (replica) is refused within that. A change committed in this process (any ORM commit that
touched a token or a user) drops every entry at once.
"""

import time

from watchtower.auth.models import ApiToken, User
from watchtower.auth.principal import Principal
from watchtower.auth.tokens import digest
from watchtower.commit_generation import CommitGeneration

MAX_ENTRIES = 10_000  # a flood of distinct tokens cannot grow the cache without bound


# Bumped after every commit that changed a token or a user, in any session of this process.
_generation = CommitGeneration("callers", ApiToken, User)


class Callers:
    """Token secret -> the caller it stood for when last read, for `ttl_s` seconds."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, float, int]] = {}

    def get(self, secret: str) -> Principal | None:
        """The remembered caller, or None (never seen, expired, or a token or user changed here since)."""
        entry = self._entries.get(digest(secret))
        if entry is None or entry[1] < time.monotonic() or entry[2] != _generation.value:
            return None
        return entry[0]

    def put(self, secret: str, principal: Principal, ttl_s: float, since: int) -> None:
        """Remember a caller read from the database; `since`: generation() taken before that read, so a change
        committed meanwhile is not cached over."""
        if ttl_s <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest(secret)] = (principal, time.monotonic() + ttl_s, since)


def generation() -> int:
    """Bumped by every commit here that touched a token or a user."""
    return _generation.value
