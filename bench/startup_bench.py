"""Start-up times against issue 12's targets, on an empty database (a fresh SQLite file, migrated first):

- `watchtower --help`                                   target < 0.3 s
- `watchtower serve` until its first healthy /healthz   target <= 1.5 s
  (twice: scheduler off, as the other benches run it, and on, the default, whose start is in the lifespan)
- `watchtower monitor` (one pass over every monitor)    target <= 1.5 s

    python bench/startup_bench.py [--runs 5] [--baseline /work/main]

Each command runs --runs times in a fresh interpreter; min / median / max wall seconds are printed, and the
median CPU seconds (user + system) the process used until it exited or answered: on a shared, loaded machine wall
time mostly measures the neighbours, CPU time much less. With --baseline, the same commands run from that
checkout too (alternating, so a drifting machine load hits both alike) and the ratios of medians are printed.
The load average says how loaded the (shared) machine was.

With --first-requests, a second table shows what the routers built at first use (watchtower/lazy_routes.py) cost
later: right after the first healthy /healthz, the first `GET /models` (its module is imported then), a second
one, and the first `GET /openapi.json` (every router), each with the server's CPU seconds it took; then the
same with WATCHTOWER_ROUTES_WARM_UP on, where /healthz is polled for a second during the background warm-up (its
median and max answer time) before the first `GET /models`. The baseline times the same requests (it builds every
route at start and ignores the warm-up setting), so the columns say what moved from the start to later.

The checkouts' modules are byte-compiled first, as pip compiles an installed package: with
PYTHONDONTWRITEBYTECODE set (it is, on this machine) an editable checkout would otherwise compile every module
from source at every start, about 0.6-1 s more.
"""

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"--help": 0.3, "serve": 1.5, "serve+sched": 1.5, "monitor": 1.5}
PACKAGES = ("watchtower", "detectors", "postmortems", "alerts")


TOKEN = "startup-bench"


def _env(root: Path, database_url: str, scheduler: bool = False, warm_up: bool = False) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(root), "WATCHTOWER_DATABASE_URL": database_url,
                         "WATCHTOWER_SCHEDULER_ENABLED": str(scheduler).lower(), "WATCHTOWER_API_TOKEN": TOKEN,
                         "WATCHTOWER_ROUTES_WARM_UP": str(warm_up).lower()}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    """User + system seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_command(root: Path, database_url: str, *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of `watchtower <args>` run to its exit."""
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([sys.executable, "-m", "watchtower.cli", *args], env=_env(root, database_url), cwd=root,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, _children_cpu() - cpu


def time_serve(root: Path, database_url: str, scheduler: bool = False) -> tuple[float, float]:
    """Wall seconds from starting `watchtower serve` to its first 200 from /healthz, and its CPU seconds then."""
    with _serving(root, database_url, scheduler) as (process, base, started):
        return time.perf_counter() - started, _process_cpu(process.pid)


@contextmanager
def _serving(root: Path, database_url: str, scheduler: bool = False,
             warm_up: bool = False) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """A `watchtower serve` that has answered /healthz once: the process, its URL and when it was started."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # One polling client, made before the clock starts: httpx.get makes a client (and its TLS context) per call,
    # ~30 ms of CPU each, which kept most of a core busy beside the server being timed (on 2 cores).
    poller = httpx.Client(timeout=1)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "watchtower.cli", "serve", "--port", str(port)],
                               env=_env(root, database_url, scheduler, warm_up), cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"watchtower serve exited with {process.returncode}")
            try:
                if poller.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.005)
        yield process, base, started
    finally:
        poller.close()
        process.terminate()
        process.wait(timeout=30)


def _timed(process: subprocess.Popen[bytes], client: httpx.Client, path: str) -> tuple[float, float]:
    """Wall and server CPU seconds of one GET."""
    cpu, started = _process_cpu(process.pid), time.perf_counter()
    client.get(path).raise_for_status()
    return time.perf_counter() - started, _process_cpu(process.pid) - cpu


def first_requests(root: Path, database_url: str) -> dict[str, tuple[float, float]]:
    """What the first requests after start-up cost, routers loaded on demand, then with the warm-up on."""
    found: dict[str, tuple[float, float]] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with _serving(root, database_url) as (process, base, _), httpx.Client(base_url=base, headers=headers) as client:
        found["first GET /models"] = _timed(process, client, "/models")
        found["second GET /models"] = _timed(process, client, "/models")
        found["first GET /openapi.json"] = _timed(process, client, "/openapi.json")
        found["second GET /openapi.json"] = _timed(process, client, "/openapi.json")
    with _serving(root, database_url, warm_up=True) as (process, base, _), \
            httpx.Client(base_url=base, headers=headers) as client:
        answers, until = [], time.perf_counter() + 1.0
        while time.perf_counter() < until:
            answers.append(_timed(process, client, "/healthz")[0])
        found["warm-up: /healthz median"] = (statistics.median(answers), 0.0)
        found["warm-up: /healthz max"] = (max(answers), 0.0)
        found["warm-up: first GET /models"] = _timed(process, client, "/models")
    return found


def measure(root: Path, database_url: str) -> dict[str, tuple[float, float]]:
    return {"--help": time_command(root, database_url, "--help"), "serve": time_serve(root, database_url),
            "serve+sched": time_serve(root, database_url, scheduler=True),
            "monitor": time_command(root, database_url, "monitor")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to time the same way (e.g. /work/main)")
    parser.add_argument("--first-requests", action="store_true", help="also time the first requests after start")
    args = parser.parse_args()
    roots = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as workdir:
        urls = {name: f"sqlite:///{workdir}/{name}.db" for name in roots}
        for name, root in roots.items():  # an empty, migrated database: not the first migration's time
            subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(root / p) for p in PACKAGES)], check=True)
            subprocess.run([sys.executable, "-m", "watchtower.cli", "migrate"], env=_env(root, urls[name]),
                           cwd=root, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times: dict[str, dict[str, list[tuple[float, float]]]] = {name: {k: [] for k in TARGETS} for name in roots}
        firsts: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.runs):
            for name, root in roots.items():
                for key, seconds in measure(root, urls[name]).items():
                    times[name][key].append(seconds)
            if args.first_requests:
                for name, root in roots.items():
                    for key, seconds in first_requests(root, urls[name]).items():
                        firsts.setdefault(f"{name}:{key}", []).append(seconds)
    print(f"{'command':<11} {'min s':>7} {'median s':>9} {'max s':>7} {'target s':>9}  verdict  {'cpu s':>6}"
          + ("   baseline: median s  ratio  cpu s  ratio" if args.baseline else ""))
    for key, target in TARGETS.items():
        walls, cpus = zip(*times["this"][key], strict=True)
        median, cpu = statistics.median(walls), statistics.median(cpus)
        line = (f"{key:<11} {min(walls):7.2f} {median:9.2f} {max(walls):7.2f} {target:9.2f}  "
                f"{'meets ' if median <= target else 'misses'}  {cpu:6.2f}")
        if args.baseline:
            base_walls, base_cpus = zip(*times["baseline"][key], strict=True)
            base, base_cpu = statistics.median(base_walls), statistics.median(base_cpus)
            line += f"   {base:18.2f}  {median / base:4.2f}x  {base_cpu:5.2f}  {cpu / base_cpu:4.2f}x"
        print(line)
    if firsts:
        print(f"\n{'after start-up':<26} {'median s':>9} {'max s':>7} {'server cpu s':>13}"
              + ("   baseline: median s  max s  server cpu s" if args.baseline else ""))
        for key in [k.removeprefix("this:") for k in firsts if k.startswith("this:")]:
            line = f"{key:<26}"
            for name in roots:
                walls, cpus = zip(*firsts[f"{name}:{key}"], strict=True)
                line += f" {statistics.median(walls):9.3f} {max(walls):7.3f} {statistics.median(cpus):13.3f}"
            print(line)
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
