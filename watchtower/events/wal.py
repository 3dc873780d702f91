"""SQLite's WAL checkpoints for the event writer, taken on a thread of their own instead of inside its commits.

SQLite copies the WAL back into the database file (a checkpoint: page writes and an fsync of the database file)
inside whichever COMMIT takes the WAL past `wal_autocheckpoint` pages (1000 by default). For the event writer that
was one commit in five or six of 5,000-event batches, and the request whose commit it was waited for it: 30-45 ms
more than the 5-11 ms such a commit takes (bench/ingest_bench.py's batches, load 2.4-4.4). The writer's own
connection turns the automatic checkpoint off; once its flushes wrote about as many pages, a thread takes a PASSIVE
checkpoint on a pooled connection, which in WAL mode runs beside the writer's next transactions.

Durability is unchanged: a commit is durable once its WAL frames are synced (`synchronous=FULL`); a checkpoint
only moves committed pages. Every other connection keeps SQLite's automatic checkpoint, so the WAL stays bounded
even if these checkpoints fail or lag.
"""

import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

AUTOCHECKPOINT_PAGES = 1000  # SQLite's default wal_autocheckpoint, which every other connection keeps
# What a flush adds to the WAL, in 4 KiB pages (measured: 161-174 for 5,000 keys, 3 for one key): the key rows and
# their two indexes, about 30 keys a page; the manifest row and the audit row.
_PAGES_PER_MODEL = 4
_KEYS_PER_PAGE = 25


class WalCheckpoints:
    """Checkpoints for the event writer's connection, one for about every AUTOCHECKPOINT_PAGES pages it wrote, on a
    thread of their own (started with the first; SQLite only)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._pages = 0.0  # estimated WAL pages written since the last checkpoint was asked for
        self._wanted = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failures = 0

    def take_over(self, connection: Connection) -> None:
        """Turn SQLite's automatic checkpoint off on the writer's connection."""
        if self._sqlite:
            _driver(connection).execute("PRAGMA wal_autocheckpoint=0")

    def hand_back(self, connection: Connection) -> None:
        """Restore the automatic checkpoint before the connection goes back to the pool, which lends it to others."""
        if self._sqlite and not connection.closed and not connection.invalidated:
            try:
                _driver(connection).execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            except sqlite3.Error:  # no use lending it again: the pool discards it
                connection.invalidate()

    def after_flush(self, events: int, models: int) -> bool:
        """Count a committed flush's pages; once they reach AUTOCHECKPOINT_PAGES, ask the thread for a checkpoint
        (returns at once) and say so."""
        if not self._sqlite or self._stopping:
            return False
        self._pages += _PAGES_PER_MODEL * models + events / _KEYS_PER_PAGE
        if self._pages < AUTOCHECKPOINT_PAGES:
            return False
        self._pages = 0.0
        if self._thread is None:
            thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
            try:
                thread.start()
            except RuntimeError as exc:
                # No thread to be had (the process at its limit): the writer must go on, so checkpoint here, after
                # its answers; a later flush tries the thread again.
                log.warning("no thread for WAL checkpoints (%s); checkpointing on the event writer's", exc)
                self._checkpoint()
                return True
            self._thread = thread
        self._wanted.set()
        return True

    def stop(self, timeout_s: float = 30) -> None:
        """Finish a checkpoint asked for, then end the thread."""
        self._stopping = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            self._checkpoint()  # at a stop too: the WAL left copied
            if self._stopping and not self._wanted.is_set():  # else asked again (by stop) meanwhile
                return

    def _checkpoint(self) -> None:
        """One PASSIVE checkpoint: copies what no reader still needs and waits for nobody (what it leaves, the next
        one copies). A failure is logged and counted; the WAL stays valid, and the next flushes ask again."""
        try:
            with self._engine.connect() as connection:  # from the pool for a moment, not held between checkpoints
                busy, wal_pages, copied = _driver(connection).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except (sqlite3.Error, DBAPIError) as exc:
            self.failures += 1
            log.warning("checkpointing the SQLite WAL failed (%s: %s); the next flushes ask again",
                        type(exc).__name__, str(exc).strip()[:300])
            return
        log.debug("WAL checkpoint: %s of %s pages copied (busy=%s)", copied, wal_pages, busy)


def _driver(connection: Connection) -> Any:
    """The sqlite3 connection under SQLAlchemy's, which runs these PRAGMAs outside any transaction (SQLAlchemy would
    begin one; a checkpoint inside it cannot run)."""
    return connection.connection.driver_connection
