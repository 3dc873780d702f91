"""Server CPU per predict request: the bare endpoint (bench/bare_serving.py) beside Watchtower's predict, as
CPU seconds the server process spent (utime + stime from /proc) over N requests (1 or more clients). CPU time, unlike
wall-clock latency, hardly moves with the load other processes put on the machine, so the ratio is a robust
view of the per-request overhead; serving_bench.py (wrk) gives the latencies.

    .venv/bin/python bench/serving_cpu.py --requests 2000 --databases sqlite postgresql [--clients 8]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_bench import (  # noqa: E402  (a sibling script, not a package)
    FEATURES,
    PG_URL,
    TOKEN,
    build_model,
    database_url,
    register,
    rows,
    server,
    watchtower_env,
)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def server_pid(port: int) -> int:
    """The pid listening on the port (the uvicorn process started by `server`)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
            inode = parts[9]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
        except OSError:
            continue
    raise RuntimeError(f"no process listens on {port}")


def measure(peer: str, url: str, n: int, batch: int, clients: int) -> tuple[str, float, float]:
    """(peer, server CPU ms per request, wall ms per request) over n requests from `clients` concurrent
    clients after a warm-up."""
    body = {"instances": rows(batch)}
    pid = server_pid(int(url.split(":")[2].split("/")[0]))

    def client(k: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
            for _ in range(k):
                http.post(url, json=body).raise_for_status()

    client(200)
    time.sleep(0.3)  # let an async flush of the warm-up finish
    before, started = cpu_seconds(pid), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [n // clients] * clients))
    time.sleep(0.1)  # the last async flush belongs to these requests
    cpu, wall = cpu_seconds(pid) - before, time.perf_counter() - started
    n = n // clients * clients
    return peer, cpu * 1000 / n, wall * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--clients", type=int, default=1, help="concurrent clients (threads)")
    parser.add_argument("--modes", nargs="+", default=["async", "durable"], choices=["async", "durable"])
    parser.add_argument("--databases", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_URL, help="a database this benchmark may wipe")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="serving-cpu-"))
    primary, fallback, reference = build_model(workdir)
    results = []
    bare_env = {"BENCH_ONNX": str(primary), "BENCH_FEATURES": ",".join(FEATURES)}
    with server(["-m", "uvicorn", "bench.bare_serving:app"], bare_env, workdir / "bare.log") as base:
        results.append(measure("bare endpoint", f"{base}/predict", args.requests, args.batch, args.clients))
    for kind in args.databases:
        for mode in args.modes:
            url = database_url(kind, workdir, args.pg_url)
            with server(["-m", "watchtower.cli", "serve"], watchtower_env(url, mode), workdir / "wt.log") as base:
                register(base, primary, fallback, reference)
                results.append(measure(f"watchtower {mode} {kind}", f"{base}/models/bench/predict", args.requests,
                                       args.batch, args.clients))
    shutil.rmtree(workdir, ignore_errors=True)
    bare_cpu = results[0][1]
    print(f"{'peer':28} {'CPU ms/req':>10} {'+CPU ms':>8} {'x bare':>7} {'wall ms/req':>11}")
    for peer, cpu, wall in results:
        print(f"{peer:28} {cpu:10.3f} {cpu - bare_cpu:+8.3f} {cpu / bare_cpu:7.2f} {wall:11.3f}")
    print(f"batch {args.batch}, {args.requests} requests, {args.clients} client(s); load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after (1 min); {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
