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
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"--help": 0.3, "serve": 1.5, "serve+sched": 1.5, "monitor": 1.5}
PACKAGES = ("watchtower", "detectors", "postmortems", "alerts")


def _env(root: Path, database_url: str, scheduler: bool = False) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(root), "WATCHTOWER_DATABASE_URL": database_url,
                         "WATCHTOWER_SCHEDULER_ENABLED": str(scheduler).lower()}


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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "watchtower.cli", "serve", "--port", str(port)],
                               env=_env(root, database_url, scheduler), cwd=root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"watchtower serve exited with {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started, _process_cpu(process.pid)
            except httpx.TransportError:
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(root: Path, database_url: str) -> dict[str, tuple[float, float]]:
    return {"--help": time_command(root, database_url, "--help"), "serve": time_serve(root, database_url),
            "serve+sched": time_serve(root, database_url, scheduler=True),
            "monitor": time_command(root, database_url, "monitor")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to time the same way (e.g. /work/main)")
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
        for _ in range(args.runs):
            for name, root in roots.items():
                for key, seconds in measure(root, urls[name]).items():
                    times[name][key].append(seconds)
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
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
