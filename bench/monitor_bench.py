"""Monitor-pass benchmark: one Watchtower monitor pass over a window held in the segment store, beside NannyML's
UnivariateDriftCalculator on the same window in memory.

Data: drift_bench's 20 numeric + 5 categorical columns (1M events by default), written into the segment store
as ingest does (10k-event segments) and compacted as the compaction job does; the model is a real ONNX
classifier registered with a reference of the same size. The monitor is a typical drift monitor: native_drift
and prediction_drift. Watchtower's time is the whole `run_monitor` (store read, detectors, findings stored,
breach response), with the reference already cached as in a running service (its decoded profile) and what a
first pass loads (the detectors, numba's compiled merge). NannyML's time is fit on the reference plus calculate on the
window, both frames already in memory (chunk_number=1; KS for numeric, chi2 for categorical columns, the tests
native_drift runs). Each side runs in its own process; its peak memory is its
VmHWM minus its RSS at the start. The window's feature data is the Arrow size of its 25 feature columns.

NannyML cannot live in the project's venv: its dependency s3fs -> aiobotocore pins botocore below 1.44, while
moto[server] (the test extra) needs boto3 1.44. It runs from its own venv (default .venv-nannyml beside this
repository: `python -m venv .venv-nannyml && .venv-nannyml/bin/pip install 'nannyml>=0.13' pyarrow statsmodels`;
nannyml 0.13.1 imports statsmodels without depending on it).

    python bench/monitor_bench.py [--rows 1000000] [--database sqlite|postgresql://...] [--repeat 2]
                                  [--segments directory|database]
"""

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from drift_bench import CATEGORICAL, NUMERIC, SCHEMA, _child, generate

if TYPE_CHECKING:
    from watchtower.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
SEGMENT_ROWS = 10_000
NANNYML = """
import resource, sys, time
import pandas as pd
import nannyml as nml
reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
def kib(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field))
before = kib("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")
start = time.perf_counter()
calculator = nml.UnivariateDriftCalculator(column_names=list(reference.columns), chunk_number=1,
                                           continuous_methods=["kolmogorov_smirnov"], categorical_methods=["chi2"])
calculator.fit(reference)
result = calculator.calculate(current)
seconds = time.perf_counter() - start
print(seconds, (kib("VmHWM:") - before) * 1024, len(result.filter(period="analysis").to_df()))
"""


def prepare(url: str, segments: str, rows: int) -> int:
    """A fresh database with the model registered and `rows` events in its segment store; return the window's
    feature bytes (Arrow)."""
    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from sqlalchemy import MetaData
    from sqlmodel import Session, select

    from detectors.base import ERROR, ID, LATENCY, PREDICTION, TS
    from watchtower.app import create_app
    from watchtower.clock import utcnow
    from watchtower.db import make_engine, migrate, writer
    from watchtower.events.segments import add_segment, compact_all
    from watchtower.modelkit import named_classifier
    from watchtower.registry.models import MonitoredModel
    from watchtower.settings import Settings

    engine = make_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    migrate(engine)
    reference = generate(rows, 0, False)
    reference = reference.assign(label=(reference["x04"] + reference["x05"] > 90).astype(int))
    sample = reference.sample(min(rows, 20_000), random_state=0)
    model = named_classifier(sample[NUMERIC + CATEGORICAL], sample["label"], NUMERIC, CATEGORICAL, simple=True)
    settings = Settings(database_url=url, api_token=SecretStr(TOKEN), scheduler_enabled=False,
                        segment_store=segments, max_upload_bytes=2**31, allowed_hosts="testserver")
    spec = {"name": "bench", "task": "classification", "target": "label",
            "features": [{"name": c, "type": t} for c, t in SCHEMA.items()],
            "monitors": [{"detectors": [{"name": "native_drift"}, {"name": "prediction_drift"}],
                          "window_s": 7200, "min_events": 1000}]}
    buffer = io.BytesIO()
    reference.to_parquet(buffer, index=False)
    with TestClient(create_app(settings, engine)) as client:  # binds the segment store to the engine
        registered = client.post("/models", headers={"Authorization": f"Bearer {TOKEN}"},
                                 data={"spec": json.dumps(spec)}, files={
            "primary": ("p.onnx", model.onnx), "fallback": ("f.onnx", model.onnx),
            "reference": ("reference.parquet", buffer.getvalue())})
        assert registered.status_code == 201, registered.text
    current = generate(rows, 1, True)
    rng = np.random.default_rng(2)
    start = utcnow() - timedelta(minutes=50)
    current[ID] = [f"e{i}" for i in range(rows)]
    current[TS] = pd.date_range(start, start + timedelta(minutes=45), periods=rows)
    current[PREDICTION] = rng.choice(np.array(["0", "1"], dtype=object), rows)
    current[LATENCY] = rng.uniform(1, 5, rows)
    current[ERROR] = None
    with Session(engine) as session:
        model_id = session.exec(select(MonitoredModel.id)).one()
    for first in range(0, rows, SEGMENT_ROWS):
        with Session(writer(engine)) as session:
            add_segment(session, model_id, current.iloc[first:first + SEGMENT_ROWS])  # type: ignore[arg-type]
            session.commit()
    while compact_all(engine):  # as the compaction job leaves a window: segments of up to 500k events
        pass
    engine.dispose()
    return int(pa.Table.from_pandas(current[NUMERIC + CATEGORICAL], preserve_index=False).nbytes)


def cached_runtime(url: str, segments: str) -> "Runtime":
    """A runtime with the reference decoded and cached, as in a running service (set up before the fork, so the
    child's peak is the pass's own)."""
    from sqlmodel import Session, select

    from detectors import registry
    from watchtower.db import make_engine
    from watchtower.registry.models import MonitoredModel
    from watchtower.runtime import Runtime
    from watchtower.settings import Settings

    registry.kind_of("native_drift")  # the built-in detectors are imported, as after a service's first pass...
    from detectors.sorted_merge import merge_sorted  # numba and the compiled merge (from its cache, or compiled)
    from postmortems.diagnosis import numbers  # noqa: F401  ...and what a pass imports on first use (0.3 s)
    from watchtower import learned_thresholds, windows  # noqa: F401
    from watchtower.policy import respond  # noqa: F401

    merge_sorted(np.array([0.0]), np.array([1.0]))
    runtime = Runtime(Settings(database_url=url, scheduler_enabled=False, segment_store=segments), make_engine(url))
    with Session(runtime.engine) as session:
        _, profile = runtime.references.get(session, session.exec(select(MonitoredModel)).one())
    assert profile is not None
    runtime.engine.dispose()  # the child opens its own connections
    return runtime


def watchtower_pass(runtime: "Runtime") -> tuple[float, str]:
    """The timed monitor pass, in the measuring child."""
    from watchtower.monitor import run_monitor

    start = time.perf_counter()
    result = run_monitor(runtime, "bench", "default")
    seconds = time.perf_counter() - start
    assert result.status in ("ok", "breached"), result
    return seconds, ",".join(sorted({f.feature for o in result.outcomes for f in o.findings if f.breached}))


def measure_watchtower(runtime: "Runtime") -> tuple[float, int, str]:
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_child, args=(watchtower_pass, (runtime,), send))
    process.start()
    seconds, peak, drifted = receive.recv()
    process.join()
    return seconds, peak, drifted


def nannyml_inputs(rows: int, scratch: str) -> list[str]:
    """NannyML's frames as Parquet files, written before the first measurement: written between two Watchtower
    runs, their frames left the parent's heap different for the next fork, whose peak then moved by 50%."""
    paths = [f"{scratch}/reference.parquet", f"{scratch}/current.parquet"]
    if not all(os.path.exists(p) for p in paths):
        generate(rows, 0, False).to_parquet(paths[0], index=False)
        generate(rows, 1, True).to_parquet(paths[1], index=False)
    return paths


def measure_nannyml(python: str, paths: list[str]) -> tuple[float, int]:
    """NannyML on the same frames, in its own venv's process: (seconds, peak bytes)."""
    quiet = os.environ | {"NML_DISABLE_USAGE_LOGGING": "1"}  # NannyML reports usage to a web service by default
    done = subprocess.run([python, "-c", NANNYML, *paths], capture_output=True, text=True, env=quiet)
    if done.returncode:
        raise SystemExit(f"NannyML failed ({python}):\n{done.stderr[-3000:]}")
    seconds, peak, _ = done.stdout.split()
    return float(seconds), int(peak)


def versions(python: str) -> str:
    """The versions a run's figures depend on, in a venv (NannyML's own differs from the project's)."""
    code = ("import importlib.metadata as m; print(' '.join(f'{p} {m.version(p)}' for p in "
            "('nannyml', 'pandas', 'numpy', 'scipy', 'pyarrow') if __import__('importlib.util').util.find_spec(p)))")
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="events in the window (and reference rows)")
    parser.add_argument("--database", default="sqlite", help="sqlite (a temporary file) or a postgresql:// URL")
    parser.add_argument("--segments", default="directory", choices=["directory", "database"])
    parser.add_argument("--nannyml-python", default=str(ROOT / ".venv-nannyml" / "bin" / "python"))
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, alternating; the best is shown")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp()
    url = f"sqlite:///{scratch}/bench.db" if args.database == "sqlite" else args.database
    segments = f"{scratch}/segments" if args.segments == "directory" else "database"
    started = time.perf_counter()
    feature_bytes = prepare(url, segments, args.rows)
    print(f"{args.rows:,} events written to the {args.segments} store and compacted in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    nannyml_paths = nannyml_inputs(args.rows, scratch)
    runtime = cached_runtime(url, segments)
    runs: list[tuple[float, int, str, float, int]] = []
    for _ in range(args.repeat):  # alternately, so a drifting machine load hits both alike; the best of each
        wt_seconds, wt_peak, drifted = measure_watchtower(runtime)
        nm_seconds, nm_peak = measure_nannyml(args.nannyml_python, nannyml_paths)
        print(f"watchtower pass: {wt_seconds:.2f} s, peak {wt_peak / 2**20:.0f} MiB; nannyml: {nm_seconds:.2f} s, "
              f"peak {nm_peak / 2**20:.0f} MiB; load average {os.getloadavg()[0]:.2f}", flush=True)
        runs.append((wt_seconds, wt_peak, drifted, nm_seconds, nm_peak))
    wt_seconds, wt_peak, drifted = min(r[:3] for r in runs)
    nm_seconds, nm_peak = min(r[3:] for r in runs)
    database = "sqlite" if args.database == "sqlite" else "postgresql"
    print(f"\nwindow: {args.rows:,} events x 25 features; feature data {feature_bytes / 2**20:.0f} MiB (Arrow); "
          f"database {database}, segments in the {args.segments} store")
    print(f"{'method':<42} {'wall s':>7} {'peak MiB':>9} {'peak / features':>15}")
    print(f"best of {args.repeat} runs each (a later pass finds the incident the first one opened, as a service's "
          "next pass would)")
    print(f"{'watchtower monitor pass (store read incl.)':<42} {wt_seconds:7.2f} {wt_peak / 2**20:9.0f} "
          f"{wt_peak / feature_bytes:15.2f}")
    print(f"{'nannyml UnivariateDriftCalculator (memory)':<42} {nm_seconds:7.2f} {nm_peak / 2**20:9.0f} "
          f"{nm_peak / feature_bytes:15.2f}")
    print(f"watchtower time / nannyml time: {wt_seconds / nm_seconds:.2f}; drifted (watchtower): {drifted}")
    print(f"versions: watchtower's venv: {versions(sys.executable)}; NannyML's venv: {versions(args.nannyml_python)}")
    print("load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f} on {} cores".format(
        *os.getloadavg(), os.cpu_count()))


if __name__ == "__main__":
    sys.exit(main())
