"""Events -> Window(reference, current, context) for one model's monitor, by time or by count."""

import io
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pandas as pd
from sqlmodel import Session, func, select

from detectors import registry
from detectors.base import ERROR, LABEL, LATENCY, PREDICTION, TS, DetectorKind, Window
from detectors.profile import ReferenceProfile
from detectors.sketches.profile import Profile
from watchtower.events.frames import prediction_column
from watchtower.events.segstore.manifest import live_rows
from watchtower.events.segstore.times import count_between, first_between, newest_nth, nth_from
from watchtower.events.store import read_metrics, read_rejections, read_stage, read_window
from watchtower.registry.models import Monitor, MonitoredModel, ReferenceData
from watchtower.registry.service import schema_of

HISTORY_WINDOWS = 8  # previous windows counted for volume checks
TICK = timedelta(microseconds=1)  # the stores keep microseconds: (a, b] is [a + TICK, b + TICK)
EPOCH, FAR = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


class ReferenceCache:
    """Decoded reference frames by (model id, reference row id): Parquet is decoded once per process."""

    def __init__(self) -> None:
        self._frames: dict[tuple[int, int], tuple[pd.DataFrame, ReferenceProfile | None]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, model: MonitoredModel) -> tuple[pd.DataFrame, ReferenceProfile | None]:
        """The reference frame (classes spelled as in the event store) and its stored profile."""
        ref_id = session.exec(select(func.max(ReferenceData.id)).where(ReferenceData.model_id == model.id)).one()
        key = (cast(int, model.id), cast(int, ref_id))
        with self._lock:
            if key not in self._frames:
                data, profile = session.exec(select(ReferenceData.parquet, ReferenceData.profile)
                                             .where(ReferenceData.id == ref_id)).one()
                decoded = ReferenceProfile.from_bytes(profile) if profile else None
                frame = pd.read_parquet(io.BytesIO(data))
                for column in (PREDICTION, LABEL):
                    if column in frame:
                        frame[column] = prediction_column(frame[column].tolist(), model.task)
                self._frames[key] = (frame, decoded)
            return self._frames[key]


@dataclass(frozen=True)
class Span:
    """The window a pass checks. `incomplete` says why a count window cannot be checked yet."""

    window: Window
    start: datetime
    end: datetime
    incomplete: str | None = None
    first_served: datetime | None = None  # profile mode without rows: the earliest event's time, off the manifest


def build_window(session: Session, model: MonitoredModel, monitor: Monitor, now: datetime,
                 references: ReferenceCache, profile_mode_events: int = 1_000_000) -> Span:
    """The reference and the current events: the last `window_s` seconds, or the next `window_events` events.

    In profile mode (the monitor's `mode`, or "auto" above `profile_mode_events` events) the window also carries
    both sides' merged profiles, and the current frame holds only the columns of detectors that need rows.
    """
    assert model.id is not None
    if monitor.window_events:
        start, end, incomplete = _count_bounds(session, model.id, monitor)
    else:
        start, end, incomplete = now - timedelta(seconds=monitor.window_s), now, None
    sketch = not incomplete and profile_mode(session, model.id, monitor, start, end, profile_mode_events)
    if sketch and not monitor.window_events:
        start = on_grid(session, monitor, start)
    columns = window_columns(monitor, schema_of(model), profiled=sketch)
    first_served = None
    if sketch and columns == []:  # every detector runs on the profiles: read no rows at all
        current = pd.DataFrame({TS: pd.Series([], dtype="datetime64[us, UTC]")} | {c: [] for c in schema_of(model)})
        first_served = first_between(session, model.id, start, end)
    else:
        current = read_window(session, model, start, end, columns)
    reference, profile = references.get(session, model)
    sketched = window_profiles(session, model, start, end) if sketch else None
    wanted = _detector_names(monitor)
    stages = {stage: read_stage(session, model, stage, start, end) for stage in _stages(monitor)}
    history = (_history_counts(session, model.id, start, end) if "volume" in wanted and not monitor.window_events
               else ())
    window = Window(reference=reference, current=current, schema=schema_of(model),  # type: ignore[arg-type]
                    task=model.task, profile=profile, start=start, end=end,  # type: ignore[arg-type]
                    stages=stages, metrics=read_metrics(session, model.id, start, end),
                    history_counts=history, rejected=read_rejections(session, model.id, start, end),
                    sketched=sketched)
    return Span(window, start, end, incomplete, first_served)


def profile_mode(session: Session, model_id: int, monitor: Monitor, start: datetime, end: datetime,
                 threshold: int) -> bool:
    """Whether this pass tests merged profiles: the monitor says so, or ("auto") the window holds more than
    `threshold` events, counted off the segment manifest before any row is read (a count of the events' times
    of a 100M-event window costs seconds)."""
    if monitor.mode != "auto":
        return monitor.mode == "profile"
    events = monitor.window_events or live_rows(session, model_id, start, end)
    return events > threshold


def on_grid(session: Session, monitor: Monitor, start: datetime) -> datetime:
    """A profile-mode time window starts on the profile bucket grid (WATCHTOWER_PROFILE_BUCKET_S): its start
    moves back to the bucket's start (the window grows by less than a bucket), so no compacted segment crosses
    it and none is read row by row. The end stays `now`: events served up to now are checked (the newest,
    small segments are read exactly). A window shorter than a bucket keeps its start."""
    from watchtower.events.segstore.binding import bound
    from watchtower.events.segstore.compaction import bucket_start

    bucket_s = bound(session.get_bind()).bucket_s
    return start if monitor.window_s < bucket_s else bucket_start(start, bucket_s)


def window_profiles(session: Session, model: MonitoredModel, start: datetime,
                    end: datetime) -> tuple[Profile, Profile]:
    """The reference's and the window's mergeable profiles: stored per reference and per segment, merged, exact at
    the window's edges (watchtower/events/segstore/profiles.py)."""
    from watchtower.events.segstore.profiles import reference_profile, window_profile

    return reference_profile(session, model), window_profile(session, model, start, end).profile


# What each kind of detector reads of the current events, beyond TS; other kinds (data quality, skew, KPIs,
# a detector not registered here) read every column.
_READS: dict[DetectorKind, tuple[str, ...]] = {
    DetectorKind.INPUT_DRIFT: (), DetectorKind.PREDICTION_DRIFT: (PREDICTION,),
    DetectorKind.OPERATIONAL: (LATENCY, ERROR), DetectorKind.VOLUME: (), DetectorKind.BUSINESS_KPI: ()}


def window_columns(monitor: Monitor, schema: dict[str, str], profiled: bool = False) -> list[str] | None:
    """The event columns the monitor's detectors test (None: all of them): a drift monitor reads its features.
    In profile mode, detectors that run on profiles read none."""
    columns: list[str] = []
    for spec in monitor.detectors:
        if profiled and registry.runs_on_profiles(str(spec["name"])):
            continue
        kind = registry.kind_of(str(spec["name"]))
        if kind not in _READS:
            return None
        columns += [*(schema if kind == DetectorKind.INPUT_DRIFT else ()), *_READS[kind]]
    return list(dict.fromkeys(columns))


def _count_bounds(session: Session, model_id: int, monitor: Monitor) -> tuple[datetime, datetime, str | None]:
    """Tumbling blocks of `window_events` events in served-time order, after the monitor's cursor.

    The first block is the newest N events; each later pass takes the next N after the cursor (a block holds a
    few more when several events share its last timestamp). Events served before the cursor that arrive late
    are not checked again.
    """
    n = cast(int, monitor.window_events)
    if monitor.cursor_ts is None:
        newest = newest_nth(session, model_id, n)
        if newest is None:
            return EPOCH, FAR, f"{count_between(session, model_id, EPOCH, FAR)} events so far, a block needs {n}"
        first, last = newest
        return first, last + TICK, None
    start = monitor.cursor_ts + TICK
    last_of_block = nth_from(session, model_id, start, n)
    if last_of_block is None:
        waiting = count_between(session, model_id, start, FAR)
        return start, FAR, f"{waiting} events since the last block, a block needs {n}"
    return start, last_of_block + TICK, None


def _history_counts(session: Session, model_id: int, start: datetime, end: datetime) -> tuple[int, ...]:
    length = end - start
    return tuple(count_between(session, model_id, start - k * length, start - (k - 1) * length)
                 for k in range(HISTORY_WINDOWS, 0, -1))


def _detector_names(monitor: Monitor) -> set[str]:
    return {str(spec["name"]) for spec in monitor.detectors}


def _stages(monitor: Monitor) -> set[str]:
    """Pipeline stages the monitor's skew checks compare ("serving" is the events themselves)."""
    params: list[dict[str, Any]] = [dict(spec.get("params") or {}) for spec in monitor.detectors]
    named = {str(p[k]) for p in params for k in ("baseline_stage", "compare_stage") if p.get(k)}
    defaults = {"training"} if any(str(s["name"]) == "feature_skew" and not s.get("params", {}).get("baseline_stage")
                                   for s in monitor.detectors) else set()
    return (named | defaults) - {"serving"}
