"""Profile Parquet files or a table on Spark with its built-in sketch aggregates, into Watchtower's profile format.

No Python UDF runs: every column is reduced in the JVM (`kll_sketch_agg_double`, `hll_sketch_agg`, counts,
moments), so no row crosses into Python. The KLL and HLL bytes Spark writes are Apache DataSketches' own, so a
profile made here merges with the ones Watchtower makes per segment. Needs the optional extra
`watchtower[spark]` (pyspark >= 4.1) and a Java runtime.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import datasketches as ds

from detectors.base import FeatureType
from detectors.sketches.profile import (
    DEFAULT_CATEGORY_CAP,
    DEFAULT_K,
    HLL_LG_K,
    OTHER,
    CategoryCounts,
    NumericSketch,
    Profile,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


def local_session(cores: int = 2) -> "SparkSession":
    """A local Spark bound to loopback with its UI off: what `watchtower profile` starts when given no master."""
    from pyspark.sql import SparkSession
    return (SparkSession.builder.master(f"local[{cores}]").appName("watchtower-profile")
            .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.session.timeZone", "UTC")
            .getOrCreate())


def read_rows(spark: "SparkSession", source: str | Sequence[str], ts_column: str | None = None,
              start: datetime | None = None, end: datetime | None = None) -> "DataFrame":
    """Parquet files (paths or globs) or, for a name without a slash or dot, a table; rows with start <= ts < end."""
    from pyspark.sql import functions as F
    paths = [source] if isinstance(source, str) else list(source)
    if len(paths) == 1 and "/" not in paths[0] and not paths[0].endswith(".parquet"):
        frame = spark.table(paths[0])
    else:
        frame = spark.read.parquet(*paths)
    if ts_column and start is not None:
        frame = frame.where(F.col(ts_column) >= F.lit(start))
    if ts_column and end is not None:
        frame = frame.where(F.col(ts_column) < F.lit(end))
    return frame


def profile_rows(frame: "DataFrame", schema: Mapping[str, FeatureType], k: int = DEFAULT_K,
                 category_cap: int = DEFAULT_CATEGORY_CAP) -> Profile:
    """One profile of every row of `frame`: one aggregation for the numeric columns and the row count, one
    grouped count per categorical column."""
    from pyspark.sql import functions as F
    numeric = [name for name, kind in schema.items() if kind == "numeric"]
    aggregates: list[Column] = [F.count(F.lit(1)).alias("rows")]
    for i, name in enumerate(numeric):
        aggregates += _numeric_aggregates(F.col(f"`{name}`").cast("double"), f"n{i}", k)
    row = frame.agg(*aggregates).collect()[0]
    rows = int(row["rows"])
    numeric_sketches = {name: _numeric_sketch(row, f"n{i}", k) for i, name in enumerate(numeric)}
    categorical = {name: _category_counts(frame, name, rows, category_cap)
                   for name, kind in schema.items() if kind == "categorical"}
    return Profile(rows, numeric_sketches, categorical, k, category_cap)


def _numeric_aggregates(column: "Column", key: str, k: int) -> list["Column"]:
    from pyspark.sql import functions as F
    finite = F.when(~F.isnan(column) & (F.abs(column) != float("inf")), column)
    return [
        F.kll_sketch_agg_double(finite, k).alias(f"{key}_sketch"),
        F.count(finite).alias(f"{key}_count"),
        F.sum(F.when(column.isNull() | F.isnan(column), 1).otherwise(0)).alias(f"{key}_missing"),
        F.sum(F.when(F.abs(column) == float("inf"), 1).otherwise(0)).alias(f"{key}_non_finite"),
        F.min(finite).alias(f"{key}_min"), F.max(finite).alias(f"{key}_max"),
        F.sum(finite).alias(f"{key}_sum"), F.sum(finite * finite).alias(f"{key}_sum_sq"),
    ]


def _numeric_sketch(row: Any, key: str, k: int) -> NumericSketch:
    raw = row[f"{key}_sketch"]
    sketch = bytes(raw) if raw is not None else ds.kll_doubles_sketch(k).serialize()
    count = int(row[f"{key}_count"])
    return NumericSketch(
        sketch=sketch, k=k, count=count, missing=int(row[f"{key}_missing"] or 0),
        non_finite=int(row[f"{key}_non_finite"] or 0),
        minimum=float(row[f"{key}_min"]) if count else float("nan"),
        maximum=float(row[f"{key}_max"]) if count else float("nan"),
        total=float(row[f"{key}_sum"] or 0.0), total_sq=float(row[f"{key}_sum_sq"] or 0.0))


def _category_counts(frame: "DataFrame", name: str, rows: int, cap: int) -> CategoryCounts:
    """Exact counts while the categories fit the cap; past it the top `cap`, OTHER and Spark's HLL."""
    from pyspark.sql import functions as F
    column = F.col(f"`{name}`").cast("string")
    counted = frame.where(column.isNotNull()).groupBy(column.alias("category")).count()
    present = int(counted.agg(F.sum("count")).collect()[0][0] or 0)
    # Ties by name, as Watchtower's own capping ranks them, so both sides keep the same categories.
    top = counted.orderBy(F.col("count").desc(), F.col("category")).limit(cap + 1).collect()
    counts = {str(r["category"]): int(r["count"]) for r in top}
    if len(counts) <= cap:
        return CategoryCounts(counts, rows - present)
    kept = dict(list(counts.items())[:cap])
    hll = frame.agg(F.hll_sketch_agg(column, HLL_LG_K)).collect()[0][0]
    return CategoryCounts(kept | {OTHER: present - sum(kept.values())}, rows - present, capped=True,
                          hll=ds.hll_sketch.deserialize(bytes(hll)).serialize_compact())
