"""Ingest throughput: events/s through Watchtower's HTTP API beside the storage floor, in one run.

For each database, the same N events (a classifier with 11 or 25 features: 80% numeric, 20% categorical;
id, ts, features, prediction, latency_ms) are loaded:
  watchtower   POST /models/bench/events in batches, one client, to a real `watchtower serve` (one uvicorn
               worker, scheduler off) on a fresh database. The request bodies are encoded before the clock
               starts; the time is from the first request to the last 2xx (each one committed).
  COPY         PostgreSQL only: the same rows, as the client holds them (Python dicts), written with psycopg's
               COPY (write_row, binary) into a plain table with one column per field, in one transaction.
  parquet      The same rows -> pyarrow Table (from_pylist) -> Parquet file, as a writer of files would, with the
               codec Watchtower's segments use (snappy, pyarrow's default).
Each peer runs just before and just after Watchtower, and Watchtower loads the events twice (the second time
under new ids, so nothing is a duplicate), after one untimed batch that warms the server: best of the two each,
as the machine is shared. Two rates:
events per wall second, and events per CPU second of the process doing the work (Watchtower's server
process; the peer's own process; the PostgreSQL server's CPU is counted for neither), which a loaded machine
disturbs less. Targets (issue 12): Watchtower at least 50% of COPY on PostgreSQL and of the Parquet write on
SQLite.

    python bench/ingest_bench.py                                   # 20k events, 11 features, both databases
    python bench/ingest_bench.py --events 200000 --batch 10000 --features 25
    python bench/ingest_bench.py --databases sqlite --events 5000
"""

import argparse
import io
import json
import math
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import TOKEN  # noqa: E402
from tests.processes import start_serve, stop_process  # noqa: E402

POSTGRES = os.environ.get("WATCHTOWER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test_ingest")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "bench"
CATEGORIES = np.array(["red", "green", "blue", "amber", "violet"])


def feature_schema(n: int) -> dict[str, str]:
    """n features, the last fifth categorical."""
    categorical = max(1, n // 5)
    return {f"x{i:02d}": "numeric" for i in range(n - categorical)} | {f"c{i}": "categorical"
                                                                      for i in range(categorical)}


def make_events(n: int, schema: dict[str, str], seed: int = 0, ids: str = "serial") -> list[dict[str, Any]]:
    """N events as a client sends them (JSON-ready dicts), served over the last 50 minutes; ids e0, e1... (serial)
    or random UUIDs, as many systems name their predictions (uuid)."""
    rng = np.random.default_rng(seed)
    columns = {name: (rng.normal(50, 10, n).round(4) if kind == "numeric" else rng.choice(CATEGORIES, n)).tolist()
               for name, kind in schema.items()}
    start = datetime.now(UTC) - timedelta(minutes=50)
    ts = [(start + timedelta(milliseconds=i * 45 * 60_000 / n)).isoformat() for i in range(n)]
    predictions = rng.integers(0, 2, n).tolist()
    latency = rng.gamma(2.0, 1.5, n).round(3).tolist()
    names = list(schema)
    keys = ([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)] if ids == "uuid"
            else [f"e{i}" for i in range(n)])
    return [{"id": keys[i], "ts": ts[i], "features": {k: columns[k][i] for k in names},
             "prediction": predictions[i], "latency_ms": latency[i]} for i in range(n)]


def register(base: str, schema: dict[str, str], events: list[dict[str, Any]]) -> None:
    """A real ONNX classifier registered on a reference sample of the events."""
    from watchtower.modelkit import named_classifier

    numeric = [k for k, v in schema.items() if v == "numeric"]
    categorical = [k for k, v in schema.items() if v == "categorical"]
    reference = pd.DataFrame([e["features"] for e in events[:2000]])
    reference["label"] = [e["prediction"] for e in events[:2000]]
    built = named_classifier(reference[list(schema)], reference["label"], numeric, categorical, simple=True)
    spec = {"name": MODEL, "task": "classification", "target": "label",
            "features": [{"name": k, "type": v} for k, v in schema.items()]}
    buffer = io.BytesIO()
    reference.to_parquet(buffer, index=False)
    response = httpx.post(f"{base}/models", headers=HEADERS, timeout=120, data={"spec": json.dumps(spec)}, files={
        "primary": ("p.onnx", built.onnx), "fallback": ("f.onnx", built.onnx),
        "reference": ("reference.parquet", buffer.getvalue())})
    assert response.status_code == 201, response.text


Rate = tuple[float, float]  # events per wall second, events per CPU second of the measured process


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_through_api(base: str, pid: int, events: list[dict[str, Any]], batch: int, rounds: int = 2) -> Rate:
    """POST /models/bench/events, one client, sequential batches; CPU is the server's. The best of `rounds` loads,
    each under its own ids, their bodies all encoded beforehand (the server is not left idle between loads while
    the client encodes), after one batch under ids of its own that warms the server and is not timed (its first
    batch loads the compiled body scan and Arrow's readers and makes the segment directory: 0.1-0.3 s once per
    process, no part of a load's rate)."""
    headers = HEADERS | {"Content-Type": "application/json"}
    best: Rate = (0.0, 0.0)
    loads = [[json.dumps({"events": renamed[i:i + batch]}).encode() for i in range(0, len(events), batch)]
             for renamed in ([e | {"id": f"{e['id']}-{round_}"} for e in events] if round_ else events
                             for round_ in range(rounds))]
    warm = json.dumps({"events": [e | {"id": f"{e['id']}-warm"} for e in events[:batch]]}).encode()
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        assert client.post(f"/models/{MODEL}/events", content=warm).status_code == 200
        for bodies in loads:
            started, cpu = time.perf_counter(), cpu_seconds(pid)
            for body in bodies:
                response = client.post(f"/models/{MODEL}/events", content=body)
                assert response.status_code == 200 and response.json()["duplicates"] == 0, response.text
            rate = len(events) / (time.perf_counter() - started), len(events) / (cpu_seconds(pid) - cpu)
            best = max(best[0], rate[0]), max(best[1], rate[1])
    return best


def measure_watchtower_client(base: str, model: str, n: int) -> float:
    """Events/s through watchtower.client (issue 12 point 7), measured by bench/ingest_client.py."""
    from bench.ingest_client import measure_client

    return float(measure_client(base, TOKEN, model, n))


def copy_rows(url: str, events: list[dict[str, Any]], schema: dict[str, str]) -> Rate:
    """psycopg COPY of the same rows into a plain table (dropped afterwards)."""
    import psycopg

    names = list(schema)
    columns = ", ".join(f"{k} {'double precision' if v == 'numeric' else 'text'}" for k, v in schema.items())
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy")
        conn.execute(f"CREATE TABLE bench_copy (id text, ts timestamptz, {columns}, prediction text, "
                     "latency_ms double precision)")
        conn.commit()
        started, cpu = time.perf_counter(), time.process_time()
        with conn.cursor() as cursor, cursor.copy(
                f"COPY bench_copy (id, ts, {', '.join(names)}, prediction, latency_ms) FROM STDIN") as copy:
            for e in events:
                f = e["features"]
                copy.write_row((e["id"], e["ts"], *(f[k] for k in names), str(e["prediction"]), e["latency_ms"]))
        conn.commit()
        rate = len(events) / (time.perf_counter() - started), len(events) / (time.process_time() - cpu)
        conn.execute("DROP TABLE bench_copy")
        conn.commit()
    return rate


def write_parquet(events: list[dict[str, Any]], directory: Path) -> Rate:
    """The same rows -> Arrow -> a Parquet file, compressed as segments are."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from watchtower.events.segstore.stores import CODEC

    started, cpu = time.perf_counter(), time.process_time()
    rows = [{"id": e["id"], "ts": e["ts"], **e["features"], "prediction": str(e["prediction"]),
             "latency_ms": e["latency_ms"]} for e in events]
    table = pa.Table.from_pylist(rows)
    table = table.set_column(1, "ts", pa.compute.cast(table.column("ts"), pa.timestamp("us", tz="UTC")))
    pq.write_table(table, directory / "events.parquet", compression=CODEC)
    return len(events) / (time.perf_counter() - started), len(events) / (time.process_time() - cpu)


def fresh_database(kind: str, directory: Path) -> str:
    """An empty database: a new SQLite file, or the PostgreSQL benchmark database emptied."""
    if kind == "sqlite":
        return f"sqlite:///{directory / 'bench.db'}"
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1))
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version, apscheduler_jobs")
    engine.dispose()
    return POSTGRES


Measured = tuple[str, Rate, float]  # what, its rate, the 1-minute load average just after it was measured


def run_database(kind: str, events: list[dict[str, Any]], schema: dict[str, str], batch: int,
                 directory: Path) -> list[Measured]:
    """[(what, rate, load)] for Watchtower on one database and its peer, the peer measured just before and after
    Watchtower (the machine is shared: its best of two)."""
    def peer() -> tuple[str, Rate, float]:
        if kind == "postgresql":
            name, rate = "COPY postgresql", copy_rows(POSTGRES, events, schema)
        else:
            name, rate = "parquet write", write_parquet(events, directory)
        return name, rate, os.getloadavg()[0]

    url = fresh_database(kind, directory)
    server = start_serve(url, directory / f"serve-{kind}.log")
    try:
        register(server.base, schema, events)
        name, before, load_before = peer()
        rates = [(f"watchtower {kind}", load_through_api(server.base, server.process.pid, events, batch),
                  os.getloadavg()[0])]
        client_rate = measure_watchtower_client(server.base, MODEL, len(events))
        rates.append((f"watchtower.client {kind}", (client_rate, float("nan")), os.getloadavg()[0]))
    finally:
        stop_process(server.process)
    _, after, load_after = peer()
    return [*rates, (name, (max(before[0], after[0]), max(before[1], after[1])), max(load_before, load_after))]


def report(rates: list[Measured], peers: dict[str, str]) -> None:
    by_name = {name: rate for name, rate, _ in rates}
    print(f"{'':30}{'events/s':>10}{'vs peer':>9}{'events/CPU s':>15}{'vs peer':>9}{'load':>7}")
    for name, (wall, cpu), load in rates:
        peer = peers.get(name.rsplit(" ", 1)[-1])
        cpu_columns = ("", "") if math.isnan(cpu) else (f"{cpu:,.0f}", "")
        if peer in by_name and name != peer:
            if not math.isnan(cpu):
                cpu_columns = (f"{cpu:,.0f}", f"{cpu / by_name[peer][1]:.0%}")
            print(f"{name:30}{wall:10,.0f}{wall / by_name[peer][0]:9.0%}{cpu_columns[0]:>15}{cpu_columns[1]:>9}"
                  f"{load:7.2f}")
        else:
            print(f"{name:30}{wall:10,.0f}{'':9}{cpu_columns[0]:>15}{'':9}{load:7.2f}")
    print("vs peer: of " + ", ".join(f"{peer} ({database})" for database, peer in peers.items())
          + "; load: the 1-minute load average just after the measurement (a peer's: the higher of its two)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--features", type=int, choices=(11, 25), default=11)
    parser.add_argument("--ids", choices=("serial", "uuid"), default="serial",
                        help="event ids: e0, e1... or random UUIDs (the keys' index then takes random inserts)")
    parser.add_argument("--databases", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    args = parser.parse_args()
    schema = feature_schema(args.features)
    events = make_events(args.events, schema, ids=args.ids)
    print(f"{args.events:,} events ({args.ids} ids), {args.features} features, batches of {args.batch:,}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rates: list[Measured] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.databases:
            rates += run_database(kind, events, schema, args.batch, Path(tmp))
    report(rates, {"sqlite": "parquet write", "postgresql": "COPY postgresql"})
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
