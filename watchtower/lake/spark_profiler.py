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
import pandas as pd

from detectors.base import FeatureType
from detectors.sketches.profile import (
    DEFAULT_CATEGORY_CAP,
    DEFAULT_K,
    HLL_LG_K,
    OTHER,
    CategoryCounts,
    NumericSketch,
    Profile,
    profile_frame,
)

_KEY = "__group__"  # the integer group (time bucket) column of a grouped profile

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


def local_session(cores: int = 2) -> "SparkSession":
    """A local Spark bound to loopback with its UI off: what `watchtower profile` starts when given no master."""
    return session(f"local[{cores}]")


def session(master: str) -> "SparkSession":
    """A Spark session on `master`; a local one binds to loopback with its UI off. Times are read as UTC."""
    from pyspark.sql import SparkSession
    builder = (SparkSession.builder.master(master).appName("watchtower-profile")
               .config("spark.sql.session.timeZone", "UTC"))
    if master.startswith("local"):
        builder = (builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    return builder.getOrCreate()


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
        frame = frame.where(F.col(f"`{ts_column}`") >= F.lit(start))
    if ts_column and end is not None:
        frame = frame.where(F.col(f"`{ts_column}`") < F.lit(end))
    return frame


def profile_rows(frame: "DataFrame", schema: Mapping[str, FeatureType], k: int = DEFAULT_K,
                 category_cap: int = DEFAULT_CATEGORY_CAP) -> Profile:
    """One profile of every row of `frame`: one aggregation for the numeric columns and the row count, one
    ranked count for the categorical columns."""
    from pyspark.sql import functions as F
    return profile_groups(frame, schema, F.lit(0), k, category_cap).get(0) or empty_profile(schema, k, category_cap)


def profile_groups(frame: "DataFrame", schema: Mapping[str, FeatureType], key: "Column", k: int = DEFAULT_K,
                   category_cap: int = DEFAULT_CATEGORY_CAP) -> dict[int, Profile]:
    """A profile per value of the integer `key` (a time bucket), all groups in one aggregation for the numeric
    columns and one ranked count for the categorical ones; keys with no row are absent. A schema column the
    frame lacks counts as missing, as in the single-process profiler."""
    from pyspark.sql import functions as F
    present = set(frame.columns)
    frame = frame.select(key.cast("long").alias(_KEY), *(
        (F.col(f"`{name}`") if name in present else F.lit(None)).cast(
            "double" if kind == "numeric" else "string").alias(f"c{i}")
        for i, (name, kind) in enumerate(schema.items())))
    columns = {name: (f"c{i}", kind) for i, (name, kind) in enumerate(schema.items())}
    aggregates: list[Column] = [F.count(F.lit(1)).alias("rows")]
    for column, kind in columns.values():
        aggregates += (_numeric_aggregates(F.col(column), column, k) if kind == "numeric"
                       else [F.count(F.col(column)).alias(f"{column}_present")])
    totals = {int(row[_KEY]): row for row in frame.groupBy(_KEY).agg(*aggregates).collect()}
    categorical = [(name, column) for name, (column, kind) in columns.items() if kind == "categorical"]
    counted = _category_counts(frame, [column for _, column in categorical], totals, category_cap)
    return {key_value: Profile(
        int(row["rows"]),
        {name: _numeric_sketch(row, column, k) for name, (column, kind) in columns.items() if kind == "numeric"},
        {name: counted[column][key_value] for name, column in categorical}, k, category_cap)
        for key_value, row in totals.items()}


def empty_profile(schema: Mapping[str, FeatureType], k: int = DEFAULT_K,
                  category_cap: int = DEFAULT_CATEGORY_CAP) -> Profile:
    """The profile of no rows."""
    return profile_frame(pd.DataFrame({name: pd.Series([], dtype=object) for name in schema}), schema, k,
                         category_cap)


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


def _category_counts(frame: "DataFrame", columns: list[str], totals: Mapping[int, Any],
                     cap: int) -> dict[str, dict[int, CategoryCounts]]:
    """Per categorical column and group: exact counts while the categories fit the cap; past it the top `cap`,
    OTHER and Spark's HLL. The columns are stacked into (column, category) pairs so that one ranked count covers
    them all, and only the top cap + 1 categories of each column and group leave Spark."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    if not columns:
        return {}
    stacked = frame.select(_KEY, F.explode(F.array(*(
        F.struct(F.lit(c).alias("column"), F.col(c).alias("category")) for c in columns))).alias("pair")).select(
        _KEY, "pair.column", "pair.category").where(F.col("category").isNotNull())
    counted = stacked.groupBy(_KEY, "column", "category").count()
    # Ties by name, as Watchtower's own capping ranks them, so both sides keep the same categories.
    rank = F.row_number().over(Window.partitionBy(_KEY, "column").orderBy(F.col("count").desc(), F.col("category")))
    top: dict[str, dict[int, dict[str, int]]] = {c: {key: {} for key in totals} for c in columns}
    for row in counted.withColumn("rank", rank).where(F.col("rank") <= cap + 1).orderBy(
            _KEY, "column", "rank").collect():
        top[row["column"]][int(row[_KEY])][str(row["category"])] = int(row["count"])
    capped = [(c, key) for c in columns for key, counts in top[c].items() if len(counts) > cap]
    hlls: dict[tuple[str, int], bytes] = {}
    if capped:
        wanted = F.lit(False)
        for c, key in capped:
            wanted = wanted | ((F.col("column") == c) & (F.col(_KEY) == key))
        for row in stacked.where(wanted).groupBy(_KEY, "column").agg(
                F.hll_sketch_agg(F.col("category"), HLL_LG_K).alias("hll")).collect():
            hlls[(row["column"], int(row[_KEY]))] = bytes(row["hll"])
    result: dict[str, dict[int, CategoryCounts]] = {c: {} for c in columns}
    for c in columns:
        for key, counts in top[c].items():
            rows, present = int(totals[key]["rows"]), int(totals[key][f"{c}_present"])
            if (c, key) not in hlls:
                result[c][key] = CategoryCounts(counts, rows - present)
                continue
            kept = dict(list(counts.items())[:cap])
            hll = ds.hll_sketch.deserialize(hlls[(c, key)]).serialize_compact()
            result[c][key] = CategoryCounts(kept | {OTHER: present - sum(kept.values())}, rows - present,
                                            capped=True, hll=hll)
    return result
