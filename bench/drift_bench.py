"""Drift benchmark: the native engine, its evidently-compatible mode, Evidently's DataDriftPreset and a scipy loop.

Data: 20 numeric and 5 categorical columns; the current side drifts in 4 numeric columns (0.05, 0.1, 0.25 and
0.5 sigma) and 2 categorical ones. Each method runs in its own forked process on the same frames, so its peak
memory (VmHWM - VmRSS before the run) is its own. The native reference profile is built beforehand, as the
service stores it at registration; its cost is shown on its own row.

"monitor pass (store)" is the service's whole pass over a window of that many events: the events went in
through the ingest API (10k per request) and the segment compaction job ran, as in a running service; the
timed part is `run_monitor` — reading the window from the event store, native drift, prediction drift and
missing values, storing every finding, and the breach actions (pause, swap, incident, alert outbox).

    python bench/drift_bench.py --sizes 100000 1000000 [--store sqlite|postgresql://...|none]

alibi-detect's row runs when the `alibi` extra is installed (e.g. with .venv-alibi/bin/python).
"""

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import pandas as pd

from detectors.base import DATASET, FeatureType, Window
from detectors.evidently_compat import EvidentlyCompatibleDrift
from detectors.native_drift import NativeDrift
from detectors.profile import ReferenceProfile, profile_reference
from detectors.stat_drift import StatDrift

NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SCHEMA: dict[str, FeatureType] = dict.fromkeys(NUMERIC, "numeric") | dict.fromkeys(CATEGORICAL, "categorical")
SHIFTS = {"x00": 0.05, "x01": 0.1, "x02": 0.25, "x03": 0.5}  # in units of the column's std
LEVELS = {"c0": 3, "c1": 4, "c2": 5, "c3": 6, "c4": 8}
CATEGORY_DRIFT = {"c0": 0.05, "c1": 0.10}  # share moved onto the first category
TRUTH = set(SHIFTS) | set(CATEGORY_DRIFT)
EVIDENTLY_P_VALUE_METHODS = {"K-S p_value", "chi-square p_value", "Z-test p_value"}


def generate(rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    """One side of the benchmark data; `drifted` applies the known shifts."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        if i < 14:
            values = rng.normal(10 * i, 1 + i / 10, rows)
        elif i < 17:
            values = rng.lognormal(0, 0.5, rows)
        else:
            values = rng.poisson(3 + i, rows).astype(np.float64)
        if drifted and name in SHIFTS:
            values = values + SHIFTS[name] * (1 + i / 10)  # the normal columns' std is 1 + i/10
        columns[name] = values
    for name, levels in LEVELS.items():
        p = np.full(levels, 1 / levels)
        if drifted and name in CATEGORY_DRIFT:
            p = p * (1 - CATEGORY_DRIFT[name])
            p[0] += CATEGORY_DRIFT[name]
        columns[name] = rng.choice(np.array([f"{name}_{k}" for k in range(levels)], dtype=object), rows, p=p)
    return pd.DataFrame(columns)


def run_native(reference: pd.DataFrame, current: pd.DataFrame, profile: ReferenceProfile) -> set[str]:
    """Native engine, KS + chi-square, Benjamini-Hochberg at 5 %, default effect floors."""
    return {f.feature for f in NativeDrift().check(profile, current) if f.breached}


def run_compatible(reference: pd.DataFrame, current: pd.DataFrame, profile: ReferenceProfile) -> set[str]:
    """Native engine in evidently-compatible mode."""
    return {f.feature for f in EvidentlyCompatibleDrift().check(profile, current) if f.breached} - {DATASET}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, profile: ReferenceProfile) -> set[str]:
    """Evidently 0.7 DataDriftPreset, datasets built from the frames inside the timing."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                               Dataset.from_pandas(reference, data_definition=definition))
    drifted = set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if "column" not in config:
            continue
        value, threshold = metric["value"], config["threshold"]
        if config["method"] in EVIDENTLY_P_VALUE_METHODS:
            hit = value <= threshold if config["method"] == "K-S p_value" else value < threshold
        else:
            hit = value >= threshold
        if hit:
            drifted.add(config["column"])
    return drifted


def run_scipy(reference: pd.DataFrame, current: pd.DataFrame, profile: ReferenceProfile) -> set[str]:
    """A plain scipy loop (ks_2samp, chi2_contingency, Bonferroni): the stat_drift detector."""
    return {f.feature for f in StatDrift().run(Window(reference, current, SCHEMA)) if f.breached}


def run_alibi(reference: pd.DataFrame, current: pd.DataFrame, profile: ReferenceProfile) -> set[str]:
    """alibi-detect's TabularDrift (KS / chi-square per feature), Bonferroni-corrected as it does by default."""
    from detectors.alibi_drift import AlibiDrift

    findings = AlibiDrift().run(Window(reference, current, SCHEMA))
    return {f.feature for f in findings if f.breached and f.feature != DATASET}


def run_profile(reference: pd.DataFrame, current: pd.DataFrame, profile: ReferenceProfile) -> set[str]:
    """Profiling the reference (once per registration, not per check)."""
    profile_reference(reference, SCHEMA)
    return set()


METHODS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, ReferenceProfile], set[str]]] = {
    "profile (once)": run_profile, "native": run_native, "evidently-compatible": run_compatible,
    "evidently preset": run_evidently, "scipy loop": run_scipy, "alibi TabularDrift": run_alibi}


BENCH_TOKEN = "bench-token"


def load_store(url: str, reference: pd.DataFrame, current: pd.DataFrame) -> None:
    """A fresh database with a real model registered on `reference` and `current` ingested as events."""
    import io
    import json
    from datetime import timedelta

    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from sqlalchemy import MetaData

    from watchtower.app import create_app
    from watchtower.clock import utcnow
    from watchtower.db import make_engine, migrate
    from watchtower.events.segments import compact_all
    from watchtower.modelkit import named_classifier
    from watchtower.settings import Settings

    engine = make_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    migrate(engine)
    reference = reference.assign(label=(reference["x04"] + reference["x05"] > 90).astype(int))
    sample = reference.sample(min(len(reference), 20_000), random_state=0)
    primary = named_classifier(sample[NUMERIC + CATEGORICAL], sample["label"], NUMERIC, CATEGORICAL, simple=True)
    settings = Settings(database_url=url, api_token=SecretStr(BENCH_TOKEN), scheduler_enabled=False,
                        max_upload_bytes=2**31, allowed_hosts="testserver")
    spec = {"name": "bench", "task": "classification", "target": "label",
            "features": [{"name": c, "type": t} for c, t in SCHEMA.items()],
            "monitors": [{"detectors": [{"name": "native_drift"}, {"name": "prediction_drift"},
                                        {"name": "missing_values"}], "window_s": 7200, "min_events": 1000}]}
    buffer = io.BytesIO()
    reference.to_parquet(buffer, index=False)
    with TestClient(create_app(settings, engine)) as client:
        client.headers["Authorization"] = f"Bearer {BENCH_TOKEN}"
        registered = client.post("/models", data={"spec": json.dumps(spec)}, files={
            "primary": ("p.onnx", primary.onnx), "fallback": ("f.onnx", primary.onnx),
            "reference": ("reference.parquet", buffer.getvalue())})
        assert registered.status_code == 201, registered.text
        start = utcnow() - timedelta(minutes=50)
        step = 45 * 60 / len(current)
        for first in range(0, len(current), 10_000):
            records = current.iloc[first:first + 10_000].to_dict("records")
            events = [{"id": f"e{first + i}", "ts": (start + timedelta(seconds=(first + i) * step)).isoformat(),
                       "features": r, "prediction": 0} for i, r in enumerate(records)]
            sent = client.post("/models/bench/events", json={"events": events})
            assert sent.status_code == 200, sent.text
    compact_all(engine)
    engine.dispose()


def run_store_pass(url: str) -> tuple[float, set[str]]:
    """The timed monitor pass (reference decoded beforehand, as a running service has it cached)."""
    from sqlmodel import Session, select

    from watchtower.db import make_engine
    from watchtower.monitor import run_monitor
    from watchtower.registry.models import MonitoredModel
    from watchtower.runtime import Runtime
    from watchtower.settings import Settings

    runtime = Runtime(Settings(database_url=url, scheduler_enabled=False), make_engine(url))
    with Session(runtime.engine) as session:
        runtime.references.get(session, session.exec(select(MonitoredModel)).one())
    start = time.perf_counter()
    result = run_monitor(runtime, "bench", "default")
    seconds = time.perf_counter() - start
    assert result.status in ("ok", "breached"), result
    drifted = {f.feature for o in result.outcomes if o.detector == "native_drift" for f in o.findings
               if f.breached}
    return seconds, drifted


def _kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def _child(method: Callable[..., Any], args: tuple[Any, ...], pipe: Connection) -> None:
    before = _kib("VmRSS:")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM to the current RSS, so the peak is this method's own
    start = time.perf_counter()
    outcome = method(*args)
    seconds = time.perf_counter() - start
    if isinstance(outcome, tuple):  # the method timed its own part
        seconds, outcome = outcome
    pipe.send((seconds, (_kib("VmHWM:") - before) * 1024, outcome))


@dataclass
class Row:
    """One measured method at one size."""

    method: str
    rows: int
    seconds: float
    peak_bytes: int
    drifted: set[str]


def measure(name: str, method: Callable[..., Any], args: tuple[Any, ...], rows: int) -> Row:
    """Run one method in a forked process and collect its time, peak memory and verdicts."""
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_child, args=(method, args, send))
    process.start()
    seconds, peak, drifted = receive.recv()
    process.join()
    return Row(name, rows, seconds, peak, drifted)


def score(drifted: set[str]) -> tuple[float, float]:
    """Precision and recall of the drifted columns against the injected truth."""
    hits = len(drifted & TRUTH)
    return (hits / len(drifted) if drifted else 1.0), hits / len(TRUTH)


def report(rows: list[Row], raw_bytes: dict[int, int]) -> None:
    """Print the table."""
    print(f"\n{'rows/side':>10} {'method':<21} {'wall s':>8} {'peak MB':>8} {'vs Evidently':>12} "
          f"{'precision':>9} {'recall':>6}  drifted columns")
    for row in rows:
        evidently = next((r for r in rows if r.rows == row.rows and r.method == "evidently preset"), None)
        ratio = f"{evidently.seconds / row.seconds:,.1f}x" if evidently and row.method != "profile (once)" else ""
        precision, recall = score(row.drifted)
        verdicts = "" if row.method == "profile (once)" else f"{precision:9.2f} {recall:6.2f}  " + \
            ",".join(sorted(row.drifted))
        print(f"{row.rows:>10,} {row.method:<21} {row.seconds:8.2f} {row.peak_bytes / 2**20:8.0f} {ratio:>12} "
              f"{verdicts}")
    for rows_per_side, size in raw_bytes.items():
        print(f"current window at {rows_per_side:,} rows: {size / 2**20:.0f} MB in memory (pandas, deep); "
              f"20 float64 columns alone {rows_per_side * 20 * 8 / 2**20:.0f} MB")
    print(f"injected drift: {', '.join(sorted(TRUTH))}")
    print("load average (1, 5, 15 min) at the end: {:.2f} {:.2f} {:.2f} on {} cores".format(
        *os.getloadavg(), os.cpu_count()))


def main() -> None:
    """Parse arguments, generate data per size, run every method, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="rows per side")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default="sqlite",
                        help="database for the monitor-pass row: sqlite (a temporary file), a postgresql:// URL, "
                             "or none")
    args = parser.parse_args()
    import evidently  # noqa: F401  # imported once here so no method's time includes it

    try:
        import alibi_detect  # noqa: F401
    except ImportError:
        if "alibi TabularDrift" in args.methods:
            print("alibi-detect is not installed (the alibi extra; make test builds .venv-alibi): its row is left out")
            args.methods.remove("alibi TabularDrift")

    rows: list[Row] = []
    raw_bytes: dict[int, int] = {}
    for size in args.sizes:
        reference, current = generate(size, args.seed, False), generate(size, args.seed + 1, True)
        raw_bytes[size] = int(current.memory_usage(deep=True).sum())
        profile = profile_reference(reference, SCHEMA)
        for name in args.methods:
            rows.append(measure(name, METHODS[name], (reference, current, profile), size))
            print(f"{size:,} {name}: {rows[-1].seconds:.2f} s", flush=True)
        if args.store != "none":
            url = (f"sqlite:///{tempfile.mkdtemp()}/bench.db" if args.store == "sqlite" else args.store)
            started = time.perf_counter()
            load_store(url, reference, current)
            print(f"{size:,} events ingested through the API and compacted in {time.perf_counter() - started:.0f} s",
                  flush=True)
            rows.append(measure("monitor pass (store)", run_store_pass, (url,), size))
            print(f"{size:,} monitor pass (store): {rows[-1].seconds:.2f} s", flush=True)
    report(rows, raw_bytes)


if __name__ == "__main__":
    main()
