"""Which graph serves each model, kept in memory so a predict pays no database round trip to find out.

An entry is re-read when it is older than WATCHTOWER_SERVING_REFRESH_S (a swap committed by another process,
e.g. another replica's monitor, takes effect within that), and at once after any commit in this process that
changed a model or a version (a swap by this process's monitor, a restore, an archive, a new version, a PATCH).
"""

import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from watchtower.commit_generation import CommitGeneration
from watchtower.registry.models import ModelVersion, MonitoredModel

# Bumped after every commit that changed a model or a version, in any session of this process.
_generation = CommitGeneration("serving", MonitoredModel, ModelVersion)


@dataclass(frozen=True)
class Served:
    """What predict needs about a model: a detached copy of its row, its schema and the version serving now."""

    model: MonitoredModel
    schema: dict[str, str]
    role: str
    sha256: str
    label: str
    generation: int
    read_at: float


class ServingDirectory:
    """Model name -> Served, re-read after a local change or once older than `refresh_s`."""

    def __init__(self, engine: Engine, refresh_s: float) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self._entries: dict[str, Served] = {}

    def lookup(self, name: str) -> Served:
        """The model and its serving version (NotFound for an unknown name)."""
        return self.cached(name) or self._read(name)

    def cached(self, name: str) -> Served | None:
        """The entry if it is still fresh, else None (lookup reads the database)."""
        entry = self._entries.get(name)
        if (entry is not None and entry.generation == _generation.value
                and time.monotonic() - entry.read_at < self._refresh_s):
            return entry
        return None

    def _read(self, name: str) -> Served:
        # Here, not at the top: the registry service imports the response policy and the incident service,
        # which a process that only starts (Runtime is built at every start) does not need.
        from watchtower.registry.service import current_version, get_model, schema_of, version_label

        generation = _generation.value  # taken before reading, so a change committed meanwhile re-reads again
        read_at = time.monotonic()
        with Session(self._engine) as session:
            model = get_model(session, name)
            assert model.id is not None
            version = current_version(session, model.id, model.active_role)
            session.expunge_all()  # detached, fully loaded copies: safe to share between threads read-only
        entry = Served(model, schema_of(model), version.role, version.sha256, version_label(version),
                       generation, read_at)
        self._entries[name] = entry
        return entry
