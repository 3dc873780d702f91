"""A predict request's events as columns: built on the request path without pandas, turned into one event frame
per flush by the event writer (all the requests of a flush at once, not a frame per request)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas loads with the first flush, not with the app
    import pandas as pd


@dataclass(frozen=True, eq=False)
class Scored:
    """One request's predictions: checked feature columns (check_columns' arrays), labels or values, the
    classifier's [n, classes] probabilities, and what every row of the request shares."""

    ids: list[str]
    features: dict[str, np.ndarray]
    predictions: list[Any]
    classes: tuple[str, ...]
    proba: np.ndarray | None
    latency_ms: float  # per row
    version: str
    at: datetime  # ts and received_at

    def __len__(self) -> int:
        return len(self.ids)


def scored_frame(parts: Sequence[Scored], schema: dict[str, str], task: str) -> "pd.DataFrame":
    """The event frame (as events_frame builds it) of several requests' predictions, in their order."""
    import pandas as pd

    from detectors.base import PROBA_PREFIX
    from watchtower.events.frames import RECEIVED_AT, event_frame

    sizes = [len(p) for p in parts]
    n = sum(sizes)
    features = {name: np.concatenate([_feature(p, name, kind) for p in parts]) for name, kind in schema.items()}
    times = pd.to_datetime([p.at for p in parts], utc=True).astype("datetime64[ns, UTC]").repeat(sizes)
    frame = event_frame(list(chain.from_iterable(p.ids for p in parts)), pd.Series(times, copy=False), features,
                        list(chain.from_iterable(p.predictions for p in parts)), task,
                        latency=[p.latency_ms for p in parts for _ in range(len(p))],
                        versions=[v for p in parts for v in [p.version] * len(p)], received_at=parts[0].at)
    frame[RECEIVED_AT] = times
    classes = sorted(set(chain.from_iterable(p.classes for p in parts if p.proba is not None)))
    for name in classes:  # NaN where a request's graph has no such class (a swap between two graphs)
        frame[f"{PROBA_PREFIX}{name}"] = np.concatenate([
            p.proba[:, p.classes.index(name)] if p.proba is not None and name in p.classes
            else np.full(len(p), np.nan) for p in parts]) if n else np.empty(0)
    return frame


def _feature(part: Scored, name: str, kind: str) -> np.ndarray:
    """A request's column of a feature (missing: a feature added while the request was in flight)."""
    column = part.features.get(name)
    if column is not None:
        return column
    return np.full(len(part), np.nan) if kind == "numeric" else np.full(len(part), None, dtype=object)
