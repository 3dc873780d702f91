"""A counter bumped after every commit, in any session of this process, that changed rows of some tables: an
in-memory cache compares it with the value it read under, and re-reads after a local change at once.

Process-wide on purpose: the ORM's session events have no app to report to, and a bump only makes each cache
re-read once (never serve a stale entry).
"""

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession


class CommitGeneration:
    """Bumped by every outermost commit that flushed an instance of one of `watched`."""

    def __init__(self, name: str, *watched: type) -> None:
        self.value = 0
        self._lock = threading.Lock()
        self._key = f"watchtower_changed_{name}"
        self._watched = watched
        event.listen(OrmSession, "after_flush", self._note)
        event.listen(OrmSession, "after_commit", self._bump)
        event.listen(OrmSession, "after_rollback", self._forget)

    def _note(self, session: OrmSession, _context: Any) -> None:
        if any(isinstance(o, self._watched) for o in (*session.new, *session.dirty, *session.deleted)):
            session.info[self._key] = True

    def _bump(self, session: OrmSession) -> None:
        # Releasing a SAVEPOINT fires after_commit too: only the outermost commit makes the change visible.
        if session.get_nested_transaction() is None and session.info.pop(self._key, False):
            with self._lock:
                self.value += 1

    def _forget(self, session: OrmSession) -> None:
        if session.get_nested_transaction() is None:  # a rolled back SAVEPOINT keeps the earlier changes
            session.info.pop(self._key, None)
