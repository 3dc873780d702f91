"""What one flush of the event writer stores, in one transaction: a segment per model with its idempotency keys,
and the requests' audit rows; then, after the commit and the answers, the new segments' profiles."""

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from watchtower.events.scored import Scored, scored_table
from watchtower.registry.models import MonitoredModel

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pandas and the store load with the first flush, not with the app
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from numpy.typing import NDArray

# One request's events: row dicts (turned into columns here, off the request path), a predict request's
# columns (Scored) or a table the request already built column by column (the events API's batches).
Events: TypeAlias = "Sequence[dict[str, Any]] | Scored | pa.Table | pd.DataFrame"
Written: TypeAlias = "tuple[MonitoredModel, int, pa.Table]"  # a committed segment's model, id and rows


@dataclass(eq=False)
class Pending:
    """One request's events, and the future its caller waits on (resolved with how many were new)."""

    model: MonitoredModel
    rows: Events
    durable: bool
    audit: dict[str, Any] | None = None  # the request's audit_log row, inserted in the same transaction
    future: Future[int] = field(default_factory=Future)
    n: int = field(init=False)  # how many events: counted once (a flush reads it per request several times)

    def __post_init__(self) -> None:
        self.n = len(self.rows)


def write_batch(connection: Connection, batch: Sequence[Pending]) -> tuple[list[int], list[Written]]:
    """Store the batch in one transaction on `connection`; how many rows of each request were new (first id
    wins), and the segments written (for their profiles)."""
    from watchtower.events.small_flush import fits, write_small

    if fits(batch):  # a few predictions: the same rows, without the Session and Arrow's set-up for the keys
        return write_small(connection, batch)
    return write_through_session(connection, batch)


def write_through_session(connection: Connection, batch: Sequence[Pending]) -> tuple[list[int], list[Written]]:
    """write_batch for any batch: the store's insert_table in a Session."""
    from watchtower.auth.audit import insert_rows
    from watchtower.events.segstore.profiles import written

    by_model: dict[int, list[Pending]] = {}
    for item in batch:
        by_model.setdefault(item.model.id or 0, []).append(item)
    counts: dict[int, int] = {}
    segments: list[Written] = []
    with Session(connection) as session:
        for items in by_model.values():
            counts.update(accepted(items, _store(session, items[0].model, [item.rows for item in items])))
            segments += [(items[0].model, i, t) for i, t in written(session)]
        insert_rows(session, [item.audit for item in batch if item.audit is not None])  # one INSERT
        session.commit()
    return [counts[id(item)] for item in batch], segments


def accepted(items: Sequence[Pending], new: "NDArray[np.bool_]") -> dict[int, int]:
    """How many of each request's events were stored, by id(request), from the flush's mask of new rows (the
    requests' rows in order); one cumulative sum, not a sum per request."""
    import numpy as np

    sizes = np.array([item.n for item in items], dtype=np.int64)
    ends = np.cumsum(sizes)
    stored = np.concatenate([[0], np.cumsum(new, dtype=np.int64)])  # new rows before each position
    return dict(zip(map(id, items), (stored[ends] - stored[ends - sizes]).tolist(), strict=True))


def _store(session: Session, model: MonitoredModel, parts: Sequence[Events]) -> "NDArray[np.bool_]":
    """Store one model's share of a flush (one segment); say which rows were new. The one call to the store."""
    from itertools import groupby

    import pandas as pd
    import pyarrow as pa

    from watchtower.events.frames import events_frame
    from watchtower.events.segstore.manifest import as_table
    from watchtower.events.store import insert_table
    from watchtower.registry.service import schema_of

    schema = schema_of(model)
    tables: list[pa.Table] = []
    # Consecutive parts of one kind become one table (not one per request); the order (first id wins) is kept.
    for kind, run in groupby(parts, key=type):
        same: list[Any] = list(run)
        if issubclass(kind, pd.DataFrame | pa.Table):
            tables.extend(as_table(frame) for frame in same)
        elif issubclass(kind, Scored):
            tables.append(scored_table(same, schema, model.task))
        else:
            tables.append(as_table(events_frame([row for part in same for row in part], schema, model.task)))
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    return insert_table(session, model, table)


def profile_segments(engine: Engine, segments: Sequence[Written], min_rows: int) -> None:
    """Store the profiles of committed segments of at least `min_rows` rows; a failure leaves them NULL (read
    exactly, compaction fills)."""
    if not any(t.num_rows >= min_rows for _, _, t in segments):
        return
    from watchtower.events.segstore.profiles import profile_written

    for model, segment_id, table in segments:
        try:
            profile_written(engine, model, [(segment_id, table)], min_rows)
        except Exception as exc:
            log.warning("profiling event segment %s failed (%s: %s); windows read it exactly until compaction "
                        "profiles it", segment_id, type(exc).__name__, str(exc).strip()[:300])
