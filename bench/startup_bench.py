"""Start-up times against issue 12's targets, on an empty database (a fresh SQLite file, migrated first):

- `watchtower --help`                                   target < 0.3 s
- `watchtower serve` until its first healthy /healthz   target <= 1.5 s
- `watchtower monitor` (one pass over every monitor)    target <= 1.5 s

    python bench/startup_bench.py [--runs 5] [--baseline /work/main]

Each command runs --runs times in a fresh interpreter; min / median / max wall seconds are printed. With
--baseline, the same commands run from that checkout too (alternating, so a drifting machine load hits both
alike) and the ratio of medians is printed. The load average says how loaded the (shared) machine was.

The checkouts' modules are byte-compiled first, as pip compiles an installed package: with
PYTHONDONTWRITEBYTECODE set (it is, on this machine) an editable checkout would otherwise compile every module
from source at every start, about 0.6-1 s more.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"--help": 0.3, "serve": 1.5, "monitor": 1.5}
PACKAGES = ("watchtower", "detectors", "postmortems", "alerts")


def _env(root: Path, database_url: str) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(root), "WATCHTOWER_DATABASE_URL": database_url,
                         "WATCHTOWER_SCHEDULER_ENABLED": "false"}


def time_command(root: Path, database_url: str, *args: str) -> float:
    """Wall seconds of `watchtower <args>` run to its exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "watchtower.cli", *args], env=_env(root, database_url), cwd=root,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def time_serve(root: Path, database_url: str) -> float:
    """Wall seconds from starting `watchtower serve` to its first 200 from /healthz."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "watchtower.cli", "serve", "--port", str(port)],
                               env=_env(root, database_url), cwd=root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"watchtower serve exited with {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(root: Path, database_url: str) -> dict[str, float]:
    return {"--help": time_command(root, database_url, "--help"), "serve": time_serve(root, database_url),
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
        times: dict[str, dict[str, list[float]]] = {name: {k: [] for k in TARGETS} for name in roots}
        for _ in range(args.runs):
            for name, root in roots.items():
                for key, seconds in measure(root, urls[name]).items():
                    times[name][key].append(seconds)
    print(f"{'command':<10} {'min s':>7} {'median s':>9} {'max s':>7} {'target s':>9}  verdict"
          + ("   baseline median s   ratio" if args.baseline else ""))
    for key, target in TARGETS.items():
        runs = times["this"][key]
        median = statistics.median(runs)
        line = (f"{key:<10} {min(runs):7.2f} {median:9.2f} {max(runs):7.2f} {target:9.2f}  "
                f"{'meets' if median <= target else 'misses'}")
        if args.baseline:
            base = statistics.median(times["baseline"][key])
            line += f"   {base:19.2f}   {median / base:5.2f}x"
        print(line)
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
