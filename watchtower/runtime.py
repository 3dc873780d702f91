"""What the API, the scheduler and the CLI share in one process: settings, engine, metrics, loaded models."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from alerts.metrics import Metrics
from watchtower.events.segstore import binding
from watchtower.events.writer import EventWriter
from watchtower.serving.cache import SessionCache
from watchtower.serving.directory import ServingDirectory
from watchtower.settings import Settings

if TYPE_CHECKING:
    from watchtower.windows import ReferenceCache


@dataclass
class Runtime:
    """One per process; passed explicitly, never a module global."""

    settings: Settings
    engine: Engine
    metrics: Metrics = field(default_factory=Metrics)
    cache: SessionCache = field(default_factory=SessionCache)
    # The event writer's thread is started by the app's lifespan; other processes never start it.
    writer: EventWriter = field(init=False)
    directory: ServingDirectory = field(init=False)

    def __post_init__(self) -> None:
        # The one place a process's engine meets its settings: sessions made from it write to this store.
        binding.bind(self.engine, self.settings)
        self.writer = EventWriter(self.engine, self.settings, self.metrics)
        self.directory = ServingDirectory(self.engine, self.settings.serving_refresh_s)

    @cached_property
    def references(self) -> "ReferenceCache":
        """Decoded reference frames; windows (pandas) is imported by the first monitor pass, not at start-up."""
        from watchtower.windows import ReferenceCache

        return ReferenceCache()
