"""Scale benchmark (issue 15): a monitor pass over windows of 1M, 10M and 100M events x 25 features, in exact
mode and in profile mode, and the lake path (Spark) against one process on 10M rows.

Per size, a fresh bench database gets a registered model (a real ONNX classifier; a reference of up to 1M rows)
and the window's events, written through the store's own writer path: `add_segment` in segments of 500k events
(the size compaction leaves), each profiled after its commit by `profile_written` as the event writer does.
Data: drift_bench's 20 numeric + 5 categorical columns with its known shifts (x02, x03, c0, c1 drift clearly).

- exact: `run_monitor` (native_drift + prediction_drift: store read, exact tests, findings stored), with the
  reference already cached as in a running service. Not run at 100M: the window alone would not fit in memory
  (the line printed says how much it would need).
- profile: `run_monitor` of a monitor in mode "profile": the window's profile merged from stored profiles, the
  reference's stored profile, the same detectors on the two profiles, the breach's response and its diagnosis
  numbers (read from a ~25k-event sample of the window). Twice: first merging every segment's profile (as
  right after a burst of events), then after the compactor's roll-up step (timed on its own row) has stored
  each closed bucket's merged profile (watchtower/events/segstore/rollups.py). The second pass appends to the
  incident the first one opened.
- spark vs one process (at 10M by default): `profile_rows` on Spark local[2] over the window's segment files,
  against pyarrow read + `profile_frame` in one process on the same files.

Each measured step runs in its own forked process; its peak memory is its VmHWM minus its RSS at the start (as
bench/monitor_bench.py). The Spark step's peak is the JVM's VmHWM plus the Python driver's.

    python bench/scale_bench.py [--sizes 1M,10M,100M] [--db sqlite|postgresql://...] [--spark-rows 10M]
                                [--float32] [--scratch DIR] [--keep] [--reuse]

Disk: a 100M-event window is about 18 GB of Parquet (float64). The script checks free space before each size
and stops with the figure if it is short; `--float32` stores the numeric features as float32 (the tests and the
profiles read them as float64; sketch accuracy is unaffected at these magnitudes), about halving it.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from drift_bench import CATEGORICAL, NUMERIC, SCHEMA, _child, generate

if TYPE_CHECKING:
    from watchtower.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
SEGMENT_ROWS = 500_000
REFERENCE_ROWS = 1_000_000
WINDOW_S = 7200
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the passes run "at" this time; events fill the hour before
EXACT_LIMIT = 10_000_000  # above this the exact pass is not attempted (see `exact_needs`)


def parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("KM")) * scale)


def prepare(url: str, segments: str, rows: int, float32: bool) -> tuple[int, int]:
    """A fresh database with the model registered and `rows` events written in the hour before NOW; return the
    window's feature bytes (Arrow, float64 as in memory) and the store's size on disk."""
    import io

    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from sqlalchemy import MetaData
    from sqlmodel import Session, select

    from detectors.base import ERROR, ID, LATENCY, PREDICTION, TS
    from watchtower.app import create_app
    from watchtower.db import make_engine, migrate, writer
    from watchtower.events.segments import add_segment
    from watchtower.events.segstore.profiles import profile_written, written
    from watchtower.modelkit import named_classifier
    from watchtower.registry.models import MonitoredModel
    from watchtower.settings import Settings

    engine = make_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    migrate(engine)
    reference = generate(min(rows, REFERENCE_ROWS), 0, False)
    reference = reference.assign(label=(reference["x04"] + reference["x05"] > 90).astype(int))
    sample = reference.sample(min(len(reference), 20_000), random_state=0)
    model = named_classifier(sample[NUMERIC + CATEGORICAL], sample["label"], NUMERIC, CATEGORICAL, simple=True)
    settings = Settings(database_url=url, api_token=SecretStr(TOKEN), scheduler_enabled=False,
                        segment_store=segments, max_upload_bytes=2**31, allowed_hosts="testserver")
    spec = {"name": "bench", "task": "classification", "target": "label",
            "features": [{"name": c, "type": t} for c, t in SCHEMA.items()],
            "monitors": [{"name": mode, "mode": mode, "window_s": WINDOW_S, "min_events": 1000,
                          "detectors": [{"name": "native_drift"}, {"name": "prediction_drift"}]}
                         for mode in ("exact", "profile")]}
    buffer = io.BytesIO()
    reference.to_parquet(buffer, index=False)
    del reference
    with TestClient(create_app(settings, engine)) as client:  # registration only; binds the store to the engine
        registered = client.post("/models", headers={"Authorization": f"Bearer {TOKEN}"},
                                 data={"spec": json.dumps(spec)}, files={
            "primary": ("p.onnx", model.onnx), "fallback": ("f.onnx", model.onnx),
            "reference": ("reference.parquet", buffer.getvalue())})
        assert registered.status_code == 201, registered.text
        with Session(engine) as session:
            registered_model = session.exec(select(MonitoredModel)).one()
        feature_bytes = 0
        first_ts, span = NOW - timedelta(minutes=55), timedelta(minutes=50)
        for first in range(0, rows, SEGMENT_ROWS):
            n = min(SEGMENT_ROWS, rows - first)
            chunk = generate(n, 1 + first // SEGMENT_ROWS, True)
            feature_bytes += int(pa.Table.from_pandas(chunk, preserve_index=False).nbytes)
            if float32:
                chunk[NUMERIC] = chunk[NUMERIC].astype(np.float32)
            rng = np.random.default_rng(first)
            chunk[ID] = [f"e{i}" for i in range(first, first + n)]
            offsets = (np.arange(first, first + n) * (span / timedelta(microseconds=1) / rows)).astype("int64")
            chunk[TS] = pd.to_datetime(first_ts) + pd.to_timedelta(offsets, unit="us")
            chunk[PREDICTION] = rng.choice(np.array(["0", "1"], dtype=object), n)
            chunk[LATENCY] = rng.uniform(1, 5, n)
            chunk[ERROR] = None
            with Session(writer(engine)) as session:  # as the event writer: commit, then profile the segment
                add_segment(session, registered_model.id, chunk)  # type: ignore[arg-type]
                done = written(session)
                session.commit()
            profile_written(engine, registered_model, done, min_rows=0)
            if (first // SEGMENT_ROWS) % 20 == 19:
                print(f"  {first + n:,} events written", flush=True)
    engine.dispose()
    disk = sum(f.stat().st_size for f in Path(segments).rglob("*.parquet")) if os.path.isdir(segments) else 0
    return feature_bytes, disk


def cached_runtime(url: str, segments: str) -> "Runtime":
    """A runtime with the reference frame and profile decoded and cached, as in a running service (before the
    fork, so the child's peak is the pass's own)."""
    from sqlmodel import Session, select

    from detectors import registry
    from watchtower.db import make_engine
    from watchtower.events.segstore.profiles import reference_profile
    from watchtower.registry.models import MonitoredModel
    from watchtower.runtime import Runtime
    from watchtower.settings import Settings

    registry.kind_of("native_drift")
    runtime = Runtime(Settings(database_url=url, scheduler_enabled=False, segment_store=segments), make_engine(url))
    with Session(runtime.engine) as session:
        model = session.exec(select(MonitoredModel)).one()
        runtime.references.get(session, model)
        reference_profile(session, model)  # decoded once per process, as the frame is
    runtime.engine.dispose()
    return runtime


def exact_pass(runtime: "Runtime") -> tuple[float, str]:
    return monitor_pass(runtime, "exact")


def profile_pass(runtime: "Runtime") -> tuple[float, str]:
    return monitor_pass(runtime, "profile")


def monitor_pass(runtime: "Runtime", mode: str) -> tuple[float, str]:
    """One `run_monitor` of the monitor of that mode: window (rows or merged stored profiles), native_drift and
    prediction_drift, findings stored, the breach's response and diagnosis numbers (a sample, in profile mode)."""
    from watchtower.monitor import run_monitor

    start = time.perf_counter()
    result = run_monitor(runtime, "bench", mode, now=NOW)
    seconds = time.perf_counter() - start
    assert result.status in ("ok", "breached"), result
    assert {f.mode for o in result.outcomes for f in o.findings} == ({"exact"} if mode == "exact"
                                                                     else {"sketch k=1024"}), mode
    return seconds, ",".join(sorted({f.feature for o in result.outcomes for f in o.findings
                                     if f.breached and f.feature in SCHEMA}))


def forget_rollups(url: str) -> None:
    """A reused store starts without rollups, as a freshly written one does."""
    from sqlalchemy import delete
    from sqlmodel import Session

    from watchtower.db import make_engine
    from watchtower.events.models import ProfileRollup

    engine = make_engine(url)
    with Session(engine) as session:
        session.execute(delete(ProfileRollup))
        session.commit()
    engine.dispose()


def roll_up_buckets(url: str, segments: str) -> int:
    """What the compactor does after its merges: store each closed profile bucket's rollup (rollups.py)."""
    from sqlmodel import Session, select

    from watchtower.db import make_engine
    from watchtower.events.segstore.binding import bind
    from watchtower.events.segstore.rollups import roll_up
    from watchtower.registry.models import MonitoredModel
    from watchtower.settings import Settings

    engine = make_engine(url)
    bind(engine, Settings(database_url=url, scheduler_enabled=False, segment_store=segments))
    with Session(engine) as session:
        model_id = session.exec(select(MonitoredModel.id)).one()
    stored = roll_up(engine, model_id, now=NOW)  # type: ignore[arg-type]
    engine.dispose()
    return stored


def one_process_profile(files: list[str]) -> tuple[float, int]:
    from detectors.sketches.profile import profile_frame

    start = time.perf_counter()
    frame = pads.dataset(files, format="parquet").to_table(columns=list(SCHEMA)).to_pandas()
    profile = profile_frame(frame, SCHEMA)
    return time.perf_counter() - start, profile.rows


def spark_profile(files: list[str]) -> tuple[float, tuple[int, float, int]]:
    """(job seconds, (rows, session start seconds, JVM peak bytes)); the session start is not in the job time."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from watchtower.lake.spark_profiler import local_session, profile_rows, read_rows

    started = time.perf_counter()
    spark = local_session(2)
    spark.sparkContext.setLogLevel("ERROR")
    session_s = time.perf_counter() - started
    start = time.perf_counter()
    profile = profile_rows(read_rows(spark, files), SCHEMA)
    seconds = time.perf_counter() - start
    jvm_peak = _jvm_peak(spark)
    spark.stop()
    return seconds, (profile.rows, session_s, jvm_peak)


def _jvm_peak(spark: Any) -> int:
    try:
        pid = spark.sparkContext._gateway.proc.pid
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (AttributeError, OSError, StopIteration):
        return 0


def measure(method: Any, *args: Any) -> tuple[float, int, Any]:
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_child, args=(method, args, send))
    process.start()
    seconds, peak, outcome = receive.recv()
    process.join()
    return seconds, peak, outcome


def available_memory() -> int:
    with open("/proc/meminfo") as meminfo:
        return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M,100M", help="window sizes in events (K and M suffixes)")
    parser.add_argument("--db", default="sqlite", help="sqlite (a file in the scratch directory) or a postgresql:// "
                        "URL of a bench database (its tables are dropped)")
    parser.add_argument("--spark-rows", default="10M", help="the size at which Spark is compared (0: never)")
    parser.add_argument("--float32", action="store_true", help="store numeric features as float32 (half the disk)")
    parser.add_argument("--scratch", help="where the database and segments go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--reuse", action="store_true", help="with --scratch: use the stores an earlier --keep run "
                        "wrote there (its rollups deleted first; incidents its passes opened stay open)")
    args = parser.parse_args()
    sizes, spark_rows = [parse_size(s) for s in args.sizes.split(",")], parse_size(args.spark_rows)
    scratch = args.scratch or tempfile.mkdtemp(prefix="scale-bench-")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; scratch {scratch}", flush=True)
    table: list[tuple[str, int, float | None, int | None, str]] = []

    def record(step: str, rows: int, seconds: float | None, peak: int | None, note: str) -> None:
        table.append((step, rows, seconds, peak, note))
        if seconds is not None and peak is not None:  # as it goes: a long run cut short still says something
            print(f"  {step}: {seconds:.2f} s, peak {peak / 2**20:.0f} MiB, {note} (load {os.getloadavg()[0]:.1f})",
                  flush=True)

    disk_per_row = 190.0 / (2 if args.float32 else 1)  # bytes of Parquet per event, until a size measures it
    exact_ratio: float | None = None  # exact pass peak / window feature bytes, measured at the largest exact size
    try:
        for rows in sizes:
            segments = f"{scratch}/segments-{rows}"
            needed, free = rows * disk_per_row * 1.1, shutil.disk_usage(scratch).free
            if needed > free:
                print(f"{rows:,} events: skipped, needs about {needed / 2**30:.0f} GiB of disk and "
                      f"{free / 2**30:.0f} GiB are free (try --float32)", flush=True)
                continue
            url = f"sqlite:///{scratch}/bench-{rows}.db" if args.db == "sqlite" else args.db
            prepared = Path(f"{scratch}/bench-{rows}.json")
            if args.reuse and prepared.exists():
                feature_bytes, disk = json.loads(prepared.read_text())
                forget_rollups(url)
                print(f"{rows:,} events: reusing the store written by an earlier run in {scratch}", flush=True)
            else:
                started = time.perf_counter()
                feature_bytes, disk = prepare(url, segments, rows, args.float32)
                prepared.write_text(json.dumps([feature_bytes, disk]))
                print(f"{rows:,} events written and profiled in {time.perf_counter() - started:.0f} s; "
                      f"{disk / 2**30:.2f} GiB on disk; feature data {feature_bytes / 2**20:.0f} MiB in memory "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
            disk_per_row = disk / rows if disk else disk_per_row
            runtime = cached_runtime(url, segments)
            if rows <= EXACT_LIMIT:
                seconds, peak, drifted = measure(exact_pass, runtime)
                exact_ratio = peak / feature_bytes
                record("exact", rows, seconds, peak, drifted)
            else:
                guess = f"about {exact_ratio * feature_bytes / 2**30:.0f} GiB" if exact_ratio else "more"
                print(f"exact pass at {rows:,}: not run; the window's features alone are "
                      f"{feature_bytes / 2**30:.1f} GiB in memory, the pass would peak at {guess}, "
                      f"{available_memory() / 2**30:.1f} GiB are available", flush=True)
                record("exact", rows, None, None, "not run: memory")
            seconds, peak, drifted = measure(profile_pass, runtime)
            record("profile: segment profiles", rows, seconds, peak, drifted)
            seconds, peak, rolled = measure(roll_up_buckets, url, segments)
            record("compactor: roll up buckets", rows, seconds, peak, f"{rolled} bucket rollups stored")
            seconds, peak, drifted = measure(profile_pass, runtime)
            record("profile: bucket rollups", rows, seconds, peak, drifted)
            if rows == spark_rows:
                files = [str(p) for p in Path(segments).rglob("*.parquet")]
                seconds, peak, counted = measure(one_process_profile, files)
                record("one process: read + profile_frame", rows, seconds, peak, f"{counted:,} rows")
                seconds, peak, (counted, session_s, jvm) = measure(spark_profile, files)
                record("spark local[2]: profile_rows", rows, seconds, peak + jvm,
                       f"{counted:,} rows; session start {session_s:.1f} s (not in the time)")
            runtime.engine.dispose()
            if not args.keep and not args.reuse:
                shutil.rmtree(segments, ignore_errors=True)
            print(f"{rows:,} done (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        if not args.keep and not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{'step':<36} {'events':>12} {'wall s':>8} {'peak MiB':>9}  drifted / note")
    for step, rows, seconds, peak, note in table:
        wall = f"{seconds:8.2f}" if seconds is not None else f"{'-':>8}"
        mib = f"{peak / 2**20:9.0f}" if peak is not None else f"{'-':>9}"
        print(f"{step:<36} {rows:>12,} {wall} {mib}  {note}")
    print(f"load average at the end {os.getloadavg()[0]:.1f} (timings include the other processes' load)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
