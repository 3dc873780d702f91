"""Serving latency and throughput, in one run: a bare onnxruntime call, a bare FastAPI+uvicorn endpoint on the
same graph (bench/bare_serving.py: Watchtower's request model, nothing stored), and Watchtower's predict
(`watchtower serve`) in async and durable logging modes on SQLite and PostgreSQL; batches of 1/32/512 rows,
1 and 8 clients. Every server is a real uvicorn process; the load comes from `wrk` (apt-get install wrk), a C
load generator that is not the bottleneck. Prints p50/p99 and requests/s with ratios against the bare endpoint
measured just before each Watchtower measurement (the bare server stays up throughout), and the load average.

    .venv/bin/python bench/serving_bench.py                                   # everything, about 6 minutes
    .venv/bin/python bench/serving_bench.py --duration 2 --batches 1 --databases sqlite   # a quick look
    .venv/bin/python bench/serving_bench.py --kill-loss                      # async: events lost to kill -9

Targets (issue 12): async batch 1: p50 <= bare + 1 ms, p99 <= bare + 3 ms, >= 70% of its throughput with 8
clients; durable: p50 <= bare + 3 ms and p99 <= 50 ms with 8 clients, on both databases.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import MetaData
from sqlmodel import Session, select

from watchtower.db import make_engine
from watchtower.events.models import ServingEvent

ROOT = Path(__file__).resolve().parents[1]
FEATURES = [f"x{i}" for i in range(11)]
TOKEN = "bench-token"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test_writer"


@dataclass
class Result:
    peer: str
    batch: int
    clients: int
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int = 0
    bare: "Result | None" = None  # the bare endpoint's measurement taken just before this one


def build_model(workdir: Path) -> tuple[Path, Path, Path]:
    """An 11-feature classifier (primary: gradient boosting; fallback: logistic regression) and its reference."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, len(FEATURES))).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    paths = []
    for name, model in (("primary", GradientBoostingClassifier(n_estimators=50, max_depth=3)),
                        ("fallback", LogisticRegression())):
        model.fit(x, y)
        onnx = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
                               options={id(model): {"zipmap": False}}, target_opset=17)
        path = workdir / f"{name}.onnx"
        path.write_bytes(onnx.SerializeToString())
        paths.append(path)
    reference = pd.DataFrame(x, columns=FEATURES).assign(label=y)
    reference.to_csv(workdir / "reference.csv", index=False)
    return paths[0], paths[1], workdir / "reference.csv"


def rows(batch: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(batch)
    return [dict(zip(FEATURES, map(float, r), strict=True)) for r in rng.normal(size=(batch, len(FEATURES)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(command: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """A uvicorn process on a free port, until the block ends."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, *command, "--port", str(port)], cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, env=os.environ | {"PYTHONPATH": str(ROOT)} | env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")
            try:
                httpx.get(f"{base}/docs", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(url: str, body: dict[str, object], clients: int, duration: float, workdir: Path) -> Result:
    """Run wrk against url with this JSON body; parse its latency distribution and rate."""
    body_path = workdir / "body.json"
    body_path.write_text(json.dumps(body))
    script = workdir / "post.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n'
                      f'local f = io.open("{body_path}", "r")\nwrk.body = f:read("*a")\nf:close()\n')
    command = ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{max(1, round(duration))}s", "--latency"]
    out = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    percentiles = {m[0]: _ms(m[1], m[2]) for m in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Result("", len(body["instances"]), clients, percentiles["50"], percentiles["99"], rate,  # type: ignore
                  int(errors.group(1)) if errors else 0)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bare_onnx(path: Path, batch: int, duration: float) -> Result:
    """The floor: onnxruntime's run on a ready float32 matrix, one caller."""
    import onnxruntime as ort

    from watchtower.serving.onnx_model import session_options

    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    matrix = np.array([[r[f] for f in FEATURES] for r in rows(batch)], dtype=np.float32)
    times = []
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        started = time.perf_counter()
        session.run(None, {"input": matrix})
        times.append((time.perf_counter() - started) * 1000)
    return Result("onnxruntime call", batch, 1, statistics.median(times), float(np.percentile(times, 99)),
                  len(times) / duration)


def wipe(url: str) -> None:
    engine = make_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()


def register(base: str, primary: Path, fallback: Path, reference: Path) -> None:
    spec = {"name": "bench", "features": [{"name": f, "type": "numeric"} for f in FEATURES], "target": "label"}
    response = httpx.post(f"{base}/models", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120,
                          data={"spec": json.dumps(spec)},
                          files={"primary": primary.read_bytes(), "fallback": fallback.read_bytes(),
                                 "reference": ("reference.csv", reference.read_bytes())})
    response.raise_for_status()


def watchtower_env(url: str, mode: str) -> dict[str, str]:
    return {"WATCHTOWER_DATABASE_URL": url, "WATCHTOWER_API_TOKEN": TOKEN, "WATCHTOWER_SCHEDULER_ENABLED": "false",
            "WATCHTOWER_LOG_MODE": mode}


def database_url(kind: str, workdir: Path, pg_url: str) -> str:
    if kind == "sqlite":
        path = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    wipe(pg_url)
    return pg_url


def commit_floor(url: str, count: int = 300) -> tuple[float, float]:
    """What durability alone costs on this disk: a one-row INSERT and COMMIT on the database's own driver, with
    Watchtower's settings (SQLite: WAL, synchronous=FULL; PostgreSQL: its defaults, a synchronous commit), one
    at a time; p50 and p99 in ms. Durable predict waits for one such commit, so its p50 cannot be below bare +
    this."""
    engine = make_engine(url)
    times = []
    with engine.connect() as connection:
        raw: Any = connection.connection.driver_connection
        cursor = raw.cursor()
        postgres = engine.dialect.name == "postgresql"
        cursor.execute("CREATE TABLE IF NOT EXISTS commit_floor (x int)")  # not TEMP: temp tables skip the WAL
        if postgres:
            raw.commit()
        insert = "INSERT INTO commit_floor VALUES (%s)" if postgres else "INSERT INTO commit_floor VALUES (?)"
        for i in range(count):
            started = time.perf_counter()
            if not postgres:
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(insert, (i,))
            raw.commit() if postgres else cursor.execute("COMMIT")
            times.append((time.perf_counter() - started) * 1000)
        cursor.execute("DROP TABLE commit_floor")
        if postgres:
            raw.commit()
    engine.dispose()
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


FLOORS: dict[str, tuple[float, float]] = {}  # database kind -> commit floor p50, p99 (ms)


def run(args: argparse.Namespace) -> list[Result]:
    """Every measurement of Watchtower is paired with one of the bare endpoint taken just before it (the bare
    server stays up throughout): on a shared machine the load drifts over the run's minutes, and a bare figure
    from its start made later ratios say more about the drift than about Watchtower."""
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    primary, fallback, reference = build_model(workdir)
    results = [bare_onnx(primary, batch, args.duration) for batch in args.batches]
    bare_env = {"BENCH_ONNX": str(primary), "BENCH_FEATURES": ",".join(FEATURES)}
    with server(["-m", "uvicorn", "bench.bare_serving:app"], bare_env, workdir / "bare.log") as bare:
        for batch in args.batches:  # a longer warm-up: the first second of a fresh server ran 2x slower
            wrk(f"{bare}/predict", {"instances": rows(batch)}, 2, 3.0, workdir)
        for kind in args.databases:
            if "durable" in args.modes:
                FLOORS[kind] = commit_floor(database_url(kind, workdir, args.pg_url))
                print(f"  commit floor {kind}: p50 {FLOORS[kind][0]:.2f} ms  p99 {FLOORS[kind][1]:.2f} ms",
                      file=sys.stderr, flush=True)
            for mode in args.modes:
                url = database_url(kind, workdir, args.pg_url)
                with server(["-m", "watchtower.cli", "serve"], watchtower_env(url, mode), workdir / "wt.log") as base:
                    register(base, primary, fallback, reference)
                    results += measure(f"watchtower {mode} {kind}", f"{base}/models/bench/predict", args, workdir,
                                       f"{bare}/predict")
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def measure(peer: str, url: str, args: argparse.Namespace, workdir: Path, bare_url: str) -> list[Result]:
    out = []
    for batch in args.batches:
        body: dict[str, object] = {"instances": rows(batch)}
        httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).raise_for_status()
        wrk(url, body, 2, min(1.0, args.duration), workdir)  # warm-up
        for clients in args.clients:
            bare = wrk(bare_url, body, clients, args.duration, workdir)
            bare.peer = "bare endpoint"
            result = wrk(url, body, clients, args.duration, workdir)
            result.peer, result.bare = peer, bare
            out.append(result)
            print(f"  {peer:28} batch {batch:>3} clients {clients}: p50 {result.p50_ms:7.2f} ms  p99 "
                  f"{result.p99_ms:7.2f} ms  {result.rps:8.0f} req/s (bare just before: p50 {bare.p50_ms:.2f}  "
                  f"p99 {bare.p99_ms:.2f}  {bare.rps:.0f} req/s)", file=sys.stderr, flush=True)
    return out


def report(results: list[Result]) -> None:
    print("Each Watchtower row is compared with the bare endpoint measured just before it (the 'bare' columns).")
    print(f"{'peer':28} {'batch':>5} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'bare p50':>8} "
          f"{'bare p99':>8} {'bare r/s':>8} {'p50 +ms':>8} {'p99 +ms':>8} {'thr vs bare':>11} {'errors':>6}")
    for r in results:
        peer = r.bare
        extra = (f"{peer.p50_ms:8.2f} {peer.p99_ms:8.2f} {peer.rps:8.0f} {r.p50_ms - peer.p50_ms:+8.2f} "
                 f"{r.p99_ms - peer.p99_ms:+8.2f} {r.rps / peer.rps:10.0%}" if peer else
                 f"{'':8} {'':8} {'':8} {'':8} {'':8} {'':>11}")
        print(f"{r.peer:28} {r.batch:5} {r.clients:7} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.rps:8.0f} {extra} "
              f"{r.errors:6}")
    for kind, (p50, p99) in FLOORS.items():
        print(f"commit floor {kind} (one-row INSERT + COMMIT, same disk): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        for r in results:
            peer = r.bare
            if r.peer == f"watchtower durable {kind}" and r.clients == 1 and peer:
                over = r.p50_ms - peer.p50_ms
                print(f"  durable {kind} batch {r.batch}: p50 +{over:.2f} ms over bare = commit floor {p50:.2f} + "
                      f"Watchtower's own {over - p50:.2f} ms")


def kill_loss(args: argparse.Namespace) -> None:
    """Async mode under 8 clients, kill -9: how many answered predictions were not stored."""
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    model = build_model(workdir)
    for kind in args.databases:
        url = database_url(kind, workdir, args.pg_url)
        port = free_port()
        with (workdir / "kill.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "watchtower.cli", "serve", "--port", str(port)], cwd=ROOT, stdout=log,
                stderr=subprocess.STDOUT, env=os.environ | {"PYTHONPATH": str(ROOT)} | watchtower_env(url, "async"))
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        register(base, *model)
        acked, rate = _load_then_kill(base, process, args.duration)
        engine = make_engine(url)
        with Session(engine) as session:
            stored = set(session.exec(select(ServingEvent.event_id)).all())
        engine.dispose()
        lost = len(set(acked) - stored)  # answered but not stored (some stored ones never got their answer out)
        print(f"async {kind}: {len(acked)} answered, {len(stored)} stored, {lost} answered but lost at kill -9 "
              f"({lost / max(rate, 1) * 1000:.0f} ms of traffic at {rate} req/s)")


def _load_then_kill(base: str, process: subprocess.Popen[bytes], duration: float) -> tuple[list[str], int]:
    """8 clients predicting one row at a time; kill -9 the server after `duration` s. Answered ids, and how
    many were answered in the last second before the kill."""
    acked: list[str] = []
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for i in range(1_000_000):
                if stop.is_set():
                    return
                try:
                    response = http.post("/models/bench/predict", json={"instances": rows(1), "ids": [f"{k}-{i}"]})
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acked.append(f"{k}-{i}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(duration)
    before = len(acked)
    time.sleep(1.0)
    rate = len(acked) - before
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    return acked, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 512])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--modes", nargs="+", default=["async", "durable"], choices=["async", "durable"])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_URL, help="a database this benchmark may wipe")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--kill-loss", action="store_true", help="measure what async mode loses to kill -9")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed as the load generator: apt-get install wrk")
    before = os.getloadavg()
    if args.kill_loss:
        kill_loss(args)
    else:
        report(run(args))
    after = os.getloadavg()
    print(f"load average: {before[0]:.2f} before, {after[0]:.2f} after (1 min); {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
