"""The lake path: a real Spark (local[2], loopback, UI off) profiles Parquet files with its own sketch aggregates;
the result gives the single-process profiler's verdicts on the same files, and its bytes merge with ours."""

import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.base import Window
from detectors.native_drift import NativeDrift
from detectors.sketches.profile import OTHER, Profile, merge, profile_frame
from watchtower.lake.spark_profiler import local_session, profile_rows, read_rows

SCHEMA = {"amount": "numeric", "age": "numeric", "plan": "categorical"}
START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run this interpreter, not whatever python is on PATH
    session = local_session(2)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def served(rng: np.random.Generator, n: int, shift: float, day: int) -> pd.DataFrame:
    amount = rng.lognormal(3 + shift, 0.5, n)
    amount[rng.random(n) < 0.02] = np.nan
    amount[:3] = np.inf
    return pd.DataFrame({
        "ts": [START + timedelta(days=day, seconds=int(s)) for s in rng.integers(0, 86_400, n)],
        "amount": amount, "age": rng.integers(18, 90, n).astype(float),
        "plan": rng.choice(["basic", "plus", "pro", None], n, p=[0.5, 0.3, 0.15, 0.05]),
    })


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """Three daily Parquet files; the third day's amounts are shifted."""
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("lake")
    days = [served(rng, 40_000, shift, day) for day, shift in enumerate([0.0, 0.0, 0.3])]
    for day, frame in enumerate(days):
        frame.to_parquet(root / f"day={day}.parquet", index=False, coerce_timestamps="us")
    return root, pd.concat(days, ignore_index=True)


def test_spark_counts_what_the_single_process_profiler_counts(spark: object, lake: tuple[Path, pd.DataFrame]) -> None:
    root, rows = lake
    day = (START + timedelta(days=1), START + timedelta(days=2))
    ours = profile_frame(rows[(rows.ts >= day[0]) & (rows.ts < day[1])], SCHEMA)
    theirs = profile_rows(read_rows(spark, str(root / "*.parquet"), "ts", *day), SCHEMA)  # type: ignore[arg-type]
    assert theirs.rows == ours.rows == 40_000
    for name in ("amount", "age"):
        a, b = theirs.numeric[name], ours.numeric[name]
        assert (a.count, a.missing, a.non_finite, a.minimum, a.maximum) == (
            b.count, b.missing, b.non_finite, b.minimum, b.maximum)
        assert a.total == pytest.approx(b.total) and a.std == pytest.approx(b.std)
        assert a.kll().n == b.count
        values = rows.loc[(rows.ts >= day[0]) & (rows.ts < day[1]), name].to_numpy()
        values = values[np.isfinite(values)]
        for q in (0.1, 0.5, 0.9):
            point = float(np.quantile(values, q))
            assert abs(a.kll().get_rank(point) - float(np.mean(values < point))) <= a.rank_error
    assert theirs.categorical["plan"] == ours.categorical["plan"]


def test_spark_profiles_give_the_same_verdicts_and_merge_with_ours(
        spark: object, lake: tuple[Path, pd.DataFrame]) -> None:
    root, rows = lake
    files = [str(root / f"day={d}.parquet") for d in range(3)]
    reference = profile_frame(rows.iloc[:40_000], SCHEMA)  # day 0, profiled by Watchtower
    for day, shifted in ((1, False), (2, True)):
        theirs = profile_rows(read_rows(spark, files[day]), SCHEMA)  # type: ignore[arg-type]
        ours = profile_frame(rows.iloc[40_000 * day:40_000 * (day + 1)], SCHEMA)
        verdicts = [{f.feature: f.breached for f in NativeDrift().run(
            Window(rows.iloc[:0], rows.iloc[:0], SCHEMA, sketched=(reference, p)))} for p in (theirs, ours)]
        assert verdicts[0] == verdicts[1]
        assert verdicts[0]["amount"] is shifted and not verdicts[0]["age"] and not verdicts[0]["plan"]
    # Bytes from both sides merge: Spark's day 1 with Watchtower's day 2, through the stored format.
    spark_day = Profile.from_bytes(profile_rows(read_rows(spark, files[1]), SCHEMA).to_bytes())  # type: ignore[arg-type]
    both = merge([spark_day, profile_frame(rows.iloc[80_000:], SCHEMA)])
    assert both.rows == 80_000 and both.numeric["amount"].kll().n == both.numeric["amount"].count
    assert both.categorical["plan"].count == int(rows.iloc[40_000:].plan.notna().sum())


def test_spark_caps_categories_as_watchtower_does(spark: object, tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    frame = pd.DataFrame({"sku": rng.choice([f"sku-{i:03d}" for i in range(200)], 20_000)})
    frame.to_parquet(tmp_path / "skus.parquet", index=False)
    schema = {"sku": "categorical"}
    theirs = profile_rows(read_rows(spark, str(tmp_path / "skus.parquet")), schema,  # type: ignore[arg-type]
                          category_cap=50).categorical["sku"]
    ours = profile_frame(frame, schema, category_cap=50).categorical["sku"]
    assert theirs.capped and ours.capped
    assert theirs.counts == ours.counts and OTHER in theirs.counts
    assert theirs.distinct == pytest.approx(200, rel=0.05)
