"""The reference side of every drift check, computed once: sorted values, bins and moments, category counts.

A check then touches only the current window. A profile round-trips through bytes (an `.npz` archive with a
JSON header, never pickle) so the service can store it when the reference is registered.
"""

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from detectors.base import FeatureType

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
FORMAT_VERSION = 1
QUANTILE_BINS = 10  # equal-mass reference bins for PSI and Jensen-Shannon (deciles, the usual PSI binning)
TFDV_BUCKETS = 10  # TFDV's default number of equi-width histogram buckets


@dataclass(frozen=True)
class NumericProfile:
    """One numeric feature of the reference: its sorted finite values (or a sketch of them) and summaries."""

    values: Floats  # sorted finite values; evenly spaced order statistics when the reference is sketched
    count: int  # finite reference values (== len(values) unless sketched)
    missing: int  # NaN and +-inf, dropped from every test as Evidently does
    mean: float
    std: float  # population std (ddof=0): Evidently's norm for the Wasserstein distance
    bin_edges: Floats  # interior edges of the equal-mass bins, right-open: (-inf, e0), [e0, e1), ... [ek, inf)
    bin_counts: Ints
    hist_edges: Floats  # TFDV-style equi-width histogram over [min, max], last bucket closed
    hist_counts: Ints

    @property
    def exact(self) -> bool:
        """Whether `values` holds every reference value, so statistics match scipy on the raw data."""
        return len(self.values) == self.count


@dataclass(frozen=True)
class CategoricalProfile:
    """One categorical feature of the reference: counts per category (as strings, sorted)."""

    categories: tuple[str, ...]
    counts: Ints
    missing: int

    @property
    def count(self) -> int:
        """Non-missing reference values."""
        return int(self.counts.sum())


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything the native and evidently-compatible checks need from the reference, per feature."""

    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    rows: int

    @property
    def schema(self) -> dict[str, FeatureType]:
        """Feature name -> type, numeric first."""
        kinds: dict[str, FeatureType] = dict.fromkeys(self.numeric, "numeric")
        return kinds | dict.fromkeys(self.categorical, "categorical")

    def to_bytes(self) -> bytes:
        """Serialise to an uncompressed `.npz` (sorted floats barely compress, and loading must be fast)."""
        arrays: dict[str, NDArray[Any]] = {}
        header: dict[str, Any] = {"version": FORMAT_VERSION, "rows": self.rows, "numeric": {}, "categorical": {}}
        for i, (name, p) in enumerate(self.numeric.items()):
            header["numeric"][name] = {"key": f"n{i}", "count": p.count, "missing": p.missing, "mean": p.mean,
                                       "std": p.std}
            for part in ("values", "bin_edges", "bin_counts", "hist_edges", "hist_counts"):
                arrays[f"n{i}_{part}"] = getattr(p, part)
        for i, (name, c) in enumerate(self.categorical.items()):
            header["categorical"][name] = {"key": f"c{i}", "categories": list(c.categories), "missing": c.missing}
            arrays[f"c{i}_counts"] = c.counts
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ReferenceProfile":
        """Load what `to_bytes` wrote; ValueError for another format version."""
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes())
            if header.get("version") != FORMAT_VERSION:
                raise ValueError(f"profile format {header.get('version')!r}, expected {FORMAT_VERSION}")
            numeric = {
                name: NumericProfile(count=h["count"], missing=h["missing"], mean=h["mean"], std=h["std"],
                                     **{part: archive[f"{h['key']}_{part}"] for part in
                                        ("values", "bin_edges", "bin_counts", "hist_edges", "hist_counts")})
                for name, h in header["numeric"].items()
            }
            categorical = {
                name: CategoricalProfile(tuple(h["categories"]), archive[f"{h['key']}_counts"], h["missing"])
                for name, h in header["categorical"].items()
            }
        return cls(numeric, categorical, header["rows"])


def finite_values(column: pd.Series | NDArray[Any]) -> Floats:
    """The column as float64 without NaN and +-inf (Evidently drops both before any drift test)."""
    values = np.asarray(column, dtype=np.float64)
    return values[np.isfinite(values)]


def histogram_sorted(sorted_values: Floats, edges: Floats) -> Ints:
    """`np.histogram(values, edges)[0]` for sorted values: bins right-open, the last one closed."""
    if len(edges) < 2:
        return np.zeros(0, dtype=np.int64)
    below = np.searchsorted(sorted_values, edges[:-1], side="left")
    last = np.searchsorted(sorted_values, edges[-1:], side="right")
    return np.diff(np.concatenate([below, last])).astype(np.int64)


def equal_mass_counts(sorted_values: Floats, interior_edges: Floats) -> Ints:
    """Counts in (-inf, e0), [e0, e1), ..., [ek, inf) for sorted values."""
    cuts = np.searchsorted(sorted_values, interior_edges, side="left")
    return np.diff(np.concatenate([[0], cuts, [len(sorted_values)]])).astype(np.int64)


def equi_width_edges(sorted_values: Floats, buckets: int = TFDV_BUCKETS) -> Floats:
    """Edges of `buckets` equal-width buckets over [min, max]; a single point when all values are equal."""
    if len(sorted_values) == 0:
        return np.zeros(0)
    low, high = float(sorted_values[0]), float(sorted_values[-1])
    return np.array([low, high]) if low == high else np.linspace(low, high, buckets + 1)


def profile_numeric(column: pd.Series | NDArray[Any], max_values: int = 2_000_000) -> NumericProfile:
    """Profile one numeric column; above `max_values` finite values keep evenly spaced order statistics."""
    raw = np.asarray(column, dtype=np.float64)
    full = np.sort(raw[np.isfinite(raw)])
    count, values = len(full), full
    if count > max_values:
        # The sketch keeps the empirical CDF within 1/max_values everywhere; statistics become approximate.
        values = full[((np.arange(max_values) + 0.5) * count / max_values).astype(np.int64)]
    edges = np.unique(np.quantile(full, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1])) if count else np.zeros(0)
    hist_edges = equi_width_edges(full)
    hist_counts = np.array([count]) if len(hist_edges) == 2 and hist_edges[0] == hist_edges[1] else \
        histogram_sorted(full, hist_edges)
    return NumericProfile(
        values=values, count=count, missing=len(raw) - count,
        mean=float(full.mean()) if count else float("nan"), std=float(full.std()) if count else float("nan"),
        bin_edges=edges, bin_counts=equal_mass_counts(full, edges), hist_edges=hist_edges,
        hist_counts=np.asarray(hist_counts, dtype=np.int64))


def category_counts(column: pd.Series) -> tuple[tuple[str, ...], Ints]:
    """Sorted categories (as strings) and their counts, missing values dropped."""
    counts = column.value_counts(sort=False, dropna=True)  # not dropna() first: a copy of a million objects
    # Count the raw values first and stringify only the (small) index: 1 and "1" merge, as with astype(str).
    by_label = pd.Series(counts.to_numpy(), index=counts.index.astype(str)).groupby(level=0).sum().sort_index()
    return tuple(by_label.index), by_label.to_numpy(dtype=np.int64)


def profile_categorical(column: pd.Series) -> CategoricalProfile:
    """Profile one categorical column."""
    categories, counts = category_counts(column)
    return CategoricalProfile(categories, counts, int(column.isna().sum()))


def profile_reference(frame: pd.DataFrame, schema: dict[str, FeatureType],
                      max_values: int = 2_000_000) -> ReferenceProfile:
    """Profile every schema feature of the reference frame once, for all later checks."""
    if max_values < 20_000:
        raise ValueError("max_values must be at least 20000 so small samples keep exact p-values")
    numeric = {name: profile_numeric(frame[name], max_values) for name, kind in schema.items() if kind == "numeric"}
    categorical = {name: profile_categorical(frame[name]) for name, kind in schema.items() if kind == "categorical"}
    return ReferenceProfile(numeric, categorical, len(frame))
