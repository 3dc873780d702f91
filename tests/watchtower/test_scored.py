"""Predictions handed to the event writer as columns (Scored) store exactly what the row dicts they replace did."""

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from detectors.base import ERROR, PROBA_PREFIX
from watchtower.events.frames import (
    RECEIVED_AT,
    TS_TYPE,
    column_micros,
    event_frame,
    event_table,
    events_frame,
    utc_array,
    utc_times,
)
from watchtower.events.scored import Scored, scored_table
from watchtower.events.segstore.manifest import as_table

AT = datetime(2026, 11, 2, 8, 30, 0, 123456, tzinfo=UTC)
SCHEMA = {"f1": "numeric", "f2": "numeric", "color": "categorical"}


def part(ids: list[str], classes: tuple[str, ...], proba: list[list[float]] | None, at: datetime,
         version: str, predictions: list[Any]) -> Scored:
    n = len(ids)
    features = {"f1": np.arange(n, dtype=float), "f2": np.array([np.nan] + [1.5] * (n - 1)),
                "color": np.array([None] + ["red"] * (n - 1), dtype=object)}
    return Scored(ids, features, predictions, classes, None if proba is None else np.array(proba), 0.25, version, at)


def as_rows(scored: Scored) -> list[dict[str, Any]]:
    """What predict handed the writer before Scored: one dict per event."""
    rows = []
    for k, event_id in enumerate(scored.ids):
        features = {name: column[k] for name, column in scored.features.items()}
        features = {n: None if isinstance(v, float) and math.isnan(v) else v for n, v in features.items()}
        scores = dict(zip(scored.classes, scored.proba[k].tolist(), strict=True)) if scored.proba is not None \
            else None
        rows.append({"event_id": event_id, "ts": scored.at, "features": features, "prediction": scored.predictions[k],
                     "latency_ms": scored.latency_ms, "version": scored.version, "received_at": scored.at,
                     "scores": scores})
    return rows


def keyed_in_micros(table: Any) -> Any:
    """The frame path's received_at (pandas: nanoseconds) as the Arrow paths and the event store keep it."""
    at = table.schema.get_field_index(RECEIVED_AT)
    return table.set_column(at, RECEIVED_AT, table.column(RECEIVED_AT).cast(TS_TYPE))


def by_name(table: Any) -> dict[str, list[Any]]:
    return {name: table.column(name).to_pylist() for name in sorted(table.column_names)}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_flush_of_scored_requests_stores_what_their_rows_did(task: str) -> None:
    if task == "classification":  # a swap mid-flush: the second graph knows a third class
        parts = [part(["a", "b"], ("0", "1"), [[0.2, 0.8], [0.6, 0.4]], AT, "primary-v1", [1, 0]),
                 part(["c"], ("0", "1", "2"), [[0.1, 0.2, 0.7]], AT + timedelta(milliseconds=3), "fallback-v2", [2])]
    else:
        parts = [part(["a", "b"], (), None, AT, "v1", [1.5, 2.0]),
                 part(["c"], (), None, AT + timedelta(seconds=1), "v1", [3.25])]
    expected = keyed_in_micros(as_table(events_frame([r for p in parts for r in as_rows(p)], SCHEMA, task)))
    got = scored_table(parts, SCHEMA, task)
    assert by_name(got) == by_name(expected)
    assert {f.name: f.type for f in got.schema} == {f.name: f.type for f in expected.schema}
    if task == "classification":
        assert got.column(f"{PROBA_PREFIX}2").to_pylist()[:2] == [None, None]  # the first graph had no class 2


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_events_apis_arrow_table_is_the_frame_it_replaces(task: str) -> None:
    features = {"f1": np.array([1.0, np.nan, 3.0]), "color": np.array(["red", None, "blue"], dtype=object)}
    times = [AT, None, AT + timedelta(seconds=2)]
    predictions: list[Any] = [1, 2.0, None] if task == "regression" else [1, "yes", None]
    scores = [{"0": 0.25, "1": 0.75}, None, {"1": 0.5, "2": 0.5}] if task == "classification" else None
    common: dict[str, Any] = {"latency": [1.5, None, 0.0], "errors": [None, "timeout", None], "scores": scores,
                              "versions": ["v1", None, "v2"], "received_at": AT + timedelta(hours=1)}
    expected = keyed_in_micros(as_table(event_frame(["a", "b", "c"], utc_times(times, default=AT), features,
                                                    predictions, task, **common)))
    got = event_table(["a", "b", "c"], utc_array(times, default=AT), features, predictions, task, **common)
    assert by_name(got) == by_name(expected)
    assert {f.name: f.type for f in got.schema} == {f.name: f.type for f in expected.schema}
    bare = event_table(["a"], utc_array([None], default=AT), {"f1": np.array([1.0])}, [1], task, received_at=AT)
    assert bare.column(ERROR).type == pa.string() and bare.column(ERROR).null_count == 1


# (unit, stored integers, epoch microseconds)
TIME_UNITS = [("us", [0, 1_700_000_000_123_456, None, -5], [0, 1_700_000_000_123_456, None, -5]),
              ("s", [0, 1_700_000_000, None, -5], [0, 1_700_000_000_000_000, None, -5_000_000]),
              ("ns", [0, 1_700_000_000_123_456_789, None, 7_000], [0, 1_700_000_000_123_456, None, 7])]


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(("unit", "stored", "expected"), TIME_UNITS)
def test_column_micros_views_or_casts_to_the_same_microseconds(unit: str, stored: list[int | None],
                                                               expected: list[int | None], chunked: bool) -> None:
    """A TS_TYPE column is viewed, any other unit cast: both give epoch microseconds, nulls kept, nanoseconds
    truncated."""
    times = pa.array(stored, pa.int64()).view(pa.timestamp(unit, "UTC"))
    assert (times.type == TS_TYPE) == (unit == "us")
    column = pa.chunked_array([times[:2], times[2:]]) if chunked else times
    got = column_micros(column)
    assert got.type == pa.int64()
    assert got.to_pylist() == expected
