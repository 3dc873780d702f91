"""Bearer tokens' callers kept in memory, so a request with a known token pays no database read (nor a thread
hop) in the access check.

An entry lives WATCHTOWER_AUTH_CACHE_S: a token revoked, or an owner deactivated or given another role, by
another process (replica) is refused within that. A change committed in this process (any ORM commit that
touched a token or a user) drops every entry at once.
"""

import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from watchtower.auth.models import ApiToken, User
from watchtower.auth.principal import Principal
from watchtower.auth.tokens import digest

MAX_ENTRIES = 10_000  # a flood of distinct tokens cannot grow the cache without bound
_CHANGED = "watchtower_callers_changed"


class _Generation:
    """Bumped after every commit that changed a token or a user, in any session of this process."""

    value = 0
    lock = threading.Lock()


@event.listens_for(OrmSession, "after_flush")
def _note_change(session: OrmSession, _context: Any) -> None:
    if any(isinstance(o, ApiToken | User) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(OrmSession, "after_commit")
def _bump(session: OrmSession) -> None:
    if session.get_nested_transaction() is None and session.info.pop(_CHANGED, False):
        with _Generation.lock:
            _Generation.value += 1


@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    if session.get_nested_transaction() is None:
        session.info.pop(_CHANGED, None)


class Callers:
    """Token secret -> the caller it stood for when last read, for `ttl_s` seconds."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, float, int]] = {}

    def get(self, secret: str) -> Principal | None:
        """The remembered caller, or None (never seen, expired, or a token or user changed here since)."""
        entry = self._entries.get(digest(secret))
        if entry is None or entry[1] < time.monotonic() or entry[2] != _Generation.value:
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
    return _Generation.value
