"""Layers and overrides resolved into final shifts, the way Grafana OnCall's `_resolve_schedule` claims time:
overrides first, then layers from the highest priority down, each lower one keeping only what is left.
Pure functions of their arguments (no clock, no database).
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from alerts.oncall.rotation import Rotation, Turn, layer_segments


@dataclass(frozen=True)
class Cover:
    """An override: `handle` is on call from `start` to `end`, for `replaces` only, or for everybody (None)."""

    id: int
    handle: str
    replaces: str | None
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Shift:
    """A final shift: who is on call from `start` to `end` (UTC), and why."""

    handle: str
    source: str  # "layer <name>" or "override #<id>"
    start: datetime
    end: datetime
    layer: str | None = None
    override_id: int | None = None
    replaces: str | None = None  # the person an override stands in for; None for everybody or for a layer shift
    turn: int | None = None  # the layer's shift number, so two turns of one person stay two shifts


@dataclass(frozen=True)
class Gap:
    """A stretch with nobody on call."""

    start: datetime
    end: datetime


def resolve(layers: Sequence[Rotation], covers: Sequence[Cover], start: datetime, end: datetime) -> list[Shift]:
    """The final shifts within [start, end), clipped to it: the highest layer with someone wins, and overrides,
    applied in the order they were made (a later one can override an earlier one), win over all layers."""
    ranked = sorted(layers, key=lambda layer: -layer.priority)
    segments = [layer_segments(layer, start, end) for layer in ranked]
    starts = [[s[0] for s in layer] for layer in segments]
    points = {start, end} | {t for layer in segments for s in layer for t in s[:2]}
    points |= {t for c in covers for t in (c.start, c.end) if start < t < end}
    ordered_covers = sorted(covers, key=lambda c: c.id)
    out: list[Shift] = []
    moments = sorted(points)
    for a, b in zip(moments, moments[1:], strict=False):
        shift = _top_layer(ranked, segments, starts, a, b)
        for cover in ordered_covers:
            if cover.start <= a < cover.end and (cover.replaces is None or
                                                  (shift is not None and shift.handle == cover.replaces)):
                shift = Shift(cover.handle, f"override #{cover.id}", a, b, override_id=cover.id,
                              replaces=cover.replaces)
        if shift is None:
            continue
        last = out[-1] if out else None
        if last is not None and last.end == a and _same(last, shift):
            out[-1] = Shift(last.handle, last.source, last.start, b, last.layer, last.override_id, last.replaces,
                            last.turn)
        else:
            out.append(shift)
    return out


def _top_layer(ranked: Sequence[Rotation], segments: list[list[tuple[datetime, datetime, Turn]]],
               starts: list[list[datetime]], a: datetime, b: datetime) -> Shift | None:
    """The highest layer that has someone during [a, b) (no segment boundary lies inside it)."""
    for layer, layer_segs, layer_starts in zip(ranked, segments, starts, strict=True):
        i = bisect_right(layer_starts, a) - 1
        if i >= 0 and layer_segs[i][1] > a:
            turn = layer_segs[i][2]
            return Shift(turn.handle, f"layer {layer.name}", a, b, layer=layer.name, turn=turn.index)
    return None


def _same(one: Shift, other: Shift) -> bool:
    return (one.handle, one.source, one.turn) == (other.handle, other.source, other.turn)


def gaps(shifts: Sequence[Shift], start: datetime, end: datetime) -> list[Gap]:
    """The stretches of [start, end) that no shift covers."""
    out, cursor = [], start
    for shift in shifts:
        if shift.start > cursor:
            out.append(Gap(cursor, shift.start))
        cursor = max(cursor, shift.end)
    if cursor < end:
        out.append(Gap(cursor, end))
    return out


def shift_at(shifts: Sequence[Shift], at: datetime) -> Shift | None:
    """The shift under way at `at`, if any."""
    return next((s for s in shifts if s.start <= at < s.end), None)
