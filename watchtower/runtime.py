"""What the API, the scheduler and the CLI share in one process: settings, engine, metrics, loaded models."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from alerts.metrics import Metrics
from watchtower.serving.cache import SessionCache
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

    @cached_property
    def references(self) -> "ReferenceCache":
        """Decoded reference frames; windows (pandas) is imported by the first monitor pass, not at start-up."""
        from watchtower.windows import ReferenceCache

        return ReferenceCache()
