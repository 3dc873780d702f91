"""Real `watchtower serve` processes for replica, crash and fault tests."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from tests.conftest import TOKEN, free_port

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    """One `watchtower serve` process and where it answers."""

    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no lease release."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """Terminate a test's subprocess and wait for it; kill it if it does not go in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def start_serve(url: str, log: Path, port: int | None = None, **env: str) -> Server:
    """Start `watchtower serve` on `port` (default: a free one) with WATCHTOWER_* settings `env`; wait for
    /healthz."""
    return wait_serving(launch_serve(url, log, port, **env))


def launch_serve(url: str, log: Path, port: int | None = None, **env: str) -> Server:
    """start_serve without the wait: replicas launched together start in the time of one (wait_serving each)."""
    port = port or free_port()
    settings = {"DATABASE_URL": url, "API_TOKEN": TOKEN, "SCHEDULER_ENABLED": "false"} | env
    environ = os.environ | {f"WATCHTOWER_{k}": v for k, v in settings.items()} | {"PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "watchtower.cli", "serve", "--port", str(port)],
                                   env=environ, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Server(process, f"http://127.0.0.1:{port}", log)


def wait_serving(server: Server) -> Server:
    """Wait until a launched server answers /healthz; fail with its log if it exits or takes over 90 s."""
    process, log = server.process, server.log
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, f"watchtower serve exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"watchtower serve did not come up:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{server.base}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)


def metric(server: Server, name: str, **labels: str) -> float:
    """The sum of one metric's samples that carry `labels`, from the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{server.base}/metrics", timeout=30,
                                                               headers={"Authorization": f"Bearer {TOKEN}"}).text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
