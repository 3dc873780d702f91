"""The lake path: a real Spark (local[2], loopback, UI off; one session for the whole run) profiles Parquet files
and Watchtower's own segment files with its own sketch aggregates; the result gives the single-process profiler's
verdicts on the same files, and its bytes merge with ours. `watchtower profile` posts to a live server."""

import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from detectors.base import PREDICTION, TS, FeatureType, Window
from detectors.native_drift import NativeDrift
from detectors.sketches.profile import OTHER, Profile, merge, profile_frame
from tests.conftest import TOKEN
from tests.factories import BuiltModels, make_frame, named_spec, register
from tests.watchtower.segstore_helpers import FEATURES, T0, add_model, bound_to, events
from watchtower.cli import main
from watchtower.db import writer
from watchtower.events.segments import add_segment, read_segments
from watchtower.events.segstore.profiles import window_profile
from watchtower.lake.spark_profiler import local_session, profile_rows, read_rows
from watchtower.registry.service import get_model

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


def test_spark_reads_watchtower_segment_files_and_agrees_with_the_single_process_profiler(
        spark: object, db: Engine, tmp_path: Path) -> None:
    """Segments written by the store (microsecond times: Spark refuses TIMESTAMP(NANOS)) profile on Spark as in
    one process; Spark's bytes and ours merge in either order."""
    model_id = add_model(db)
    schema: dict[str, FeatureType] = {**dict.fromkeys(FEATURES, "numeric"), PREDICTION: "numeric"}
    with bound_to(db, str(tmp_path / "segments")):
        for day, shift in enumerate([0.0, 0.0, 0.5]):
            frame = events(3000, start=T0 + timedelta(days=day), seed=day)
            frame["f0"] += shift
            with Session(writer(db)) as session:
                add_segment(session, model_id, frame)
                session.commit()
        with Session(db) as session:
            stored = read_segments(session, model_id, T0, T0 + timedelta(days=3))
    files = str(tmp_path / "segments" / f"model_id={model_id}" / "date=*" / "*.parquet")
    reference = profile_frame(stored.iloc[:3000], schema)
    profiles = {}
    for day, shifted in ((1, False), (2, True)):
        span = (T0 + timedelta(days=day), T0 + timedelta(days=day + 1))
        theirs = profile_rows(read_rows(spark, files, TS, *span), schema)  # type: ignore[arg-type]
        ours = profile_frame(stored[(stored[TS] >= span[0]) & (stored[TS] < span[1])], schema)
        assert theirs.rows == ours.rows == 3000
        verdicts = [_verdicts(reference, p, schema) for p in (theirs, ours)]
        assert verdicts[0] == verdicts[1] == {**dict.fromkeys(schema, False), "f0": shifted}
        profiles[day] = theirs, ours
    spark_day, our_day = Profile.from_bytes(profiles[1][0].to_bytes()), profiles[2][1]
    exact = profile_frame(stored.iloc[3000:], schema)
    for merged in (merge([spark_day, our_day]), merge([our_day, spark_day])):
        assert merged.rows == 6000
        for name in schema:
            a, b = merged.numeric[name], exact.numeric[name]
            assert (a.count, a.missing, a.non_finite, a.minimum, a.maximum) == (
                b.count, b.missing, b.non_finite, b.minimum, b.maximum)
            assert a.total == pytest.approx(b.total) and a.kll().n == a.count
            values = np.sort(stored[name].iloc[3000:].to_numpy())
            for q in (0.1, 0.5, 0.9):
                assert abs(a.kll().get_rank(values[int(q * 6000)]) - q) <= a.rank_error + 1 / 6000
        assert _verdicts(reference, merged, schema) == _verdicts(reference, exact, schema)
    nanos = tmp_path / "nanos.parquet"  # what segments held before: Spark refuses to read it
    pq.write_table(pa.table({TS: pa.array([0], pa.timestamp("ns", tz="UTC"))}), nanos)
    with pytest.raises(Exception, match="(?i)nanos"):
        read_rows(spark, str(nanos)).collect()  # type: ignore[arg-type]


def _verdicts(reference: Profile, current: Profile, schema: dict[str, FeatureType]) -> dict[str, bool]:
    empty = pd.DataFrame(columns=list(schema))
    findings = NativeDrift().run(Window(empty, empty, schema, sketched=(reference, current)))
    return {f.feature: f.breached for f in findings if f.feature in schema}


def _lake(root: Path, days: int = 3) -> None:
    """Daily Parquet files of a lake in its own layout: a `ts` column, the model's features, an extra column;
    1,000 rows a minute apart from midnight; the last day's f1 and f2 shifted."""
    for day in range(days):
        frame = make_frame(1000, seed=20 + day, shift=0.5 if day == days - 1 else 0.0)
        frame.insert(0, "ts", [START + timedelta(days=day, minutes=i) for i in range(1000)])
        frame["session_id"] = [f"s{day}-{i}" for i in range(1000)]
        frame.to_parquet(root / f"day={day}.parquet", index=False, coerce_timestamps="us")


def test_watchtower_profile_posts_bucketed_and_reference_profiles_that_windows_use(
        spark: object, live_server: str, db: Engine, models: BuiltModels, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        response = register(http, named_spec("mixed"), models.named_primary,  # type: ignore[arg-type]
                            models.named_fallback, models.reference)
        assert response.status_code == 201, response.text
        _lake(tmp_path)
        source = str(tmp_path / "day=*.parquet")
        day = timedelta(days=1)
        common = ["profile", "mixed", source, "--url", live_server, "--token", TOKEN]
        # Per day from 06:00 on day 1: the first bucket is clipped to the range, so it never half-counts.
        assert main([*common, "--bucket", "1d", "--start", (START + day + timedelta(hours=6)).isoformat(),
                     "--out", str(tmp_path / "bodies.json")]) == 0
        bodies = json.loads((tmp_path / "bodies.json").read_text())
        assert [(b["start"], b["end"], b["profile"]["rows"], b["reference"], b["source"]) for b in bodies] == [
            ((START + day + timedelta(hours=6)).isoformat(), (START + 2 * day).isoformat(), 640, False, "spark"),
            ((START + 2 * day).isoformat(), (START + 3 * day).isoformat(), 1000, False, "spark")]
        assert http.get("/models/mixed/profiles").json() == []  # --out posts nothing
        assert main([*common, "--bucket", "1d", "--start", (START + day + timedelta(hours=6)).isoformat()]) == 0
        assert main([*common, "--reference", "--end", (START + day).isoformat()]) == 0
        assert capsys.readouterr().out.count("posted profile") == 3
        listed = http.get("/models/mixed/profiles").json()
        assert sorted((p["rows"], p["reference"], p["source"]) for p in listed) == [
            (640, False, "spark"), (1000, False, "spark"), (1000, True, "spark")]
        reference = next(p for p in listed if p["reference"])
        assert [datetime.fromisoformat(reference[k]) for k in ("start", "end")] == [START, START + day]
    with Session(db) as session:  # a window holding both daily profiles counts both, once
        model = get_model(session, "mixed")
        window = window_profile(session, model, START + day, START + 3 * day)
        assert window.rows == 1640 and len(window.posted_used) == 2
        schema: dict[str, FeatureType] = {f["name"]: f["type"] for f in model.features}
        lake = pd.concat([pd.read_parquet(p) for p in sorted(tmp_path.glob("day=*.parquet"))], ignore_index=True)
        reference_profile = profile_frame(lake.iloc[:1000], schema)
        last_day = profile_frame(lake.iloc[2000:], schema)
        assert _verdicts(reference_profile, window.profile, schema)["f1"]  # the shifted day shows
        assert _verdicts(reference_profile, last_day, schema) == {"f1": True, "f2": True, "color": False}


def test_watchtower_profile_names_what_is_wrong(spark: object, live_server: str, models: BuiltModels,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _lake(tmp_path, days=1)
    common = [str(tmp_path / "day=0.parquet"), "--url", live_server, "--token", TOKEN]
    assert main(["profile", "nosuch", *common]) == 2  # the server's 404 body is shown
    assert "GET " in (err := capsys.readouterr().err) and "404" in err and "nosuch" in err
    with httpx.Client(base_url=live_server, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        register(http, named_spec("mixed"), models.named_primary,  # type: ignore[arg-type]
                 models.named_fallback, models.reference)
    assert main(["profile", "mixed", *common, "--ts-column", "served_at"]) == 2
    assert "no column 'served_at'" in (err := capsys.readouterr().err) and "--ts-column" in err
    assert main(["profile", "mixed", *common[:-2], "--token", "wrong"]) == 2
    assert "401" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert main(["profile", "mixed", *common]) == 2
    assert "Java runtime" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if the extra were not installed
    assert main(["profile", "mixed", *common]) == 2
    assert "pip install 'watchtower[spark]'" in capsys.readouterr().err
