"""Data-quality shares read off two profiles: values outside the reference's range, categories it never had.

Both come with the share they could be off by: the sketch's rank error for a range (0 while the sketch still
holds every value, or when the exact min and max settle it), and past the category cap the mass whose categories
the counts no longer name.
"""

from dataclasses import dataclass

from detectors.sketches.profile import OTHER, CategoryCounts, NumericSketch


@dataclass(frozen=True)
class Share:
    """A share of the current values, and how much more it could be (`bound`, a share too)."""

    share: float
    bound: float


def outside_range(low: float, high: float, current: NumericSketch) -> Share | None:
    """Share of the current non-missing values outside [low, high], ±inf included (None: no such value)."""
    present = current.count + current.non_finite
    if present == 0:
        return None
    outside, bound = float(current.non_finite), 0.0
    if current.count:
        kll = current.kll()
        error = float(kll.normalized_rank_error(False)) if kll.is_estimation_mode() else 0.0
        if current.minimum < low:  # the exact minimum says whether anything lies below at all
            outside += float(kll.get_rank(low, False)) * current.count
            bound += error * current.count
        if current.maximum > high:
            outside += (1.0 - float(kll.get_rank(high, True))) * current.count
            bound += error * current.count
    return Share(outside / present, bound / present)


def unseen(reference: CategoryCounts, current: CategoryCounts) -> tuple[Share, int] | None:
    """Share of the current values in categories the reference never had, and how many such categories (None: no
    current value). Past the cap the share counts only categories known to be unseen; `bound` is the mass that may
    be unseen too (the current OTHER bucket, and categories the capped reference may hold in its own OTHER)."""
    total = current.count
    if total == 0:
        return None
    named = {c: n for c, n in current.counts.items() if c != OTHER and c not in reference.counts}
    maybe = current.counts.get(OTHER, 0) if current.capped else 0
    if reference.capped:  # a category missing from its kept counts may be in its OTHER: unknown, not unseen
        maybe += sum(named.values())
        named = {}
    return Share(sum(named.values()) / total, maybe / total), len(named)
