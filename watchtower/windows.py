"""Events -> Window(reference, current) for one model's monitor."""

import io
import threading
from datetime import datetime, timedelta
from typing import cast

import pandas as pd
from sqlmodel import Session, select

from detectors.base import Window
from detectors.profile import ReferenceProfile
from watchtower.events.store import read_window
from watchtower.registry.models import Monitor, MonitoredModel, ReferenceData
from watchtower.registry.service import schema_of


class ReferenceCache:
    """Decoded reference frames by (model id, reference row id): Parquet is decoded once per process."""

    def __init__(self) -> None:
        self._frames: dict[tuple[int, int], tuple[pd.DataFrame, ReferenceProfile | None]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, model_id: int) -> tuple[pd.DataFrame, ReferenceProfile | None]:
        """The reference frame and its stored profile (None for references registered before profiles)."""
        ref_id = session.exec(select(ReferenceData.id).where(ReferenceData.model_id == model_id)).one()
        key = (model_id, cast(int, ref_id))
        with self._lock:
            if key not in self._frames:
                data, profile = session.exec(select(ReferenceData.parquet, ReferenceData.profile)
                                             .where(ReferenceData.id == ref_id)).one()
                decoded = ReferenceProfile.from_bytes(profile) if profile else None
                self._frames[key] = (pd.read_parquet(io.BytesIO(data)), decoded)
            return self._frames[key]


def build_window(session: Session, model: MonitoredModel, monitor: Monitor, now: datetime,
                 references: ReferenceCache) -> tuple[Window, datetime]:
    """The reference frame and the events served in the monitor's last `window_s` seconds; also the start."""
    assert model.id is not None
    start = now - timedelta(seconds=monitor.window_s)
    schema = schema_of(model)
    current = read_window(session, model.id, start, now, list(schema))
    reference, profile = references.get(session, model.id)
    window = Window(reference=reference, current=current, schema=schema,  # type: ignore[arg-type]
                    task=model.task, profile=profile)  # type: ignore[arg-type]
    return window, start
