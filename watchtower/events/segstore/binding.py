"""Which segment store an engine's sessions write to: bound once where the process's engine meets its settings
(Runtime), and found again from any Session through its bind, since add_segment receives only a Session."""

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection, Engine

from watchtower.settings import Settings

if TYPE_CHECKING:
    from watchtower.events.segstore.stores import DatabaseStore, FileStore

OPTION = "watchtower_segment_store"


@dataclass(frozen=True)
class Segments:
    """A process's segment store (opened on first use: pyarrow stays out of start-up) and its compaction knobs."""

    location: str | None  # WATCHTOWER_SEGMENT_STORE
    database_url: str
    grace: timedelta = timedelta(hours=1)  # unreferenced files younger than this are kept
    max_rows: int = 2_000_000  # rows one compaction run merges per model, at most
    profile_k: int = 1024  # WATCHTOWER_PROFILE_K
    category_cap: int = 10_000  # WATCHTOWER_PROFILE_CATEGORY_CAP
    profile_min_rows: int = 1000  # WATCHTOWER_PROFILE_MIN_ROWS: smaller flushes are profiled by compaction

    @cached_property
    def store(self) -> "DatabaseStore | FileStore":
        from watchtower.events.segstore.stores import open_store

        return open_store(self.location, self.database_url)


def bind(engine: Engine, settings: Settings) -> Segments:
    """Tie the store the settings name to the engine: its execution options reach every session and connection
    made from it, writer() copies included."""
    segments = Segments(settings.segment_store, engine.url.render_as_string(hide_password=False),
                        timedelta(seconds=settings.segment_grace_s), settings.compact_max_rows,
                        settings.profile_k, settings.profile_category_cap, settings.profile_min_rows)
    engine.update_execution_options(**{OPTION: segments})
    return segments


def bound(bind: Engine | Connection) -> Segments:
    """The segments bound to an engine or connection; unbound: the default for its database URL."""
    segments = bind.get_execution_options().get(OPTION)
    if isinstance(segments, Segments):
        return segments
    return _default(bind.engine.url.render_as_string(hide_password=False))


@lru_cache(maxsize=32)
def _default(database_url: str) -> Segments:
    return Segments(None, database_url)
