"""A real Prometheus, running the scrape job of deploy/prometheus/prometheus.yml, scrapes a live Watchtower.

Needs /usr/bin/prometheus (Debian's `prometheus`, installed by `make test`): the test fails, never skips,
without it.
"""

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml  # PyYAML comes with evidently, a dependency of watchtower
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests import factories
from tests.conftest import free_port
from tests.factories import BuiltModels
from tests.processes import stop_process
from watchtower.settings import Settings

PROMETHEUS = Path("/usr/bin/prometheus")
ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "watchtower.json"
JOB = "watchtower"
DEADLINE_S = 60.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The app takes the deploy config's scrape token, as compose.yaml sets WATCHTOWER_METRICS_TOKEN."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    job = next(job for job in config["scrape_configs"] if job["job_name"] == JOB)
    return settings.model_copy(update={"metrics_token": SecretStr(job["authorization"]["credentials"])})


def _scrape_config(target: str) -> dict[str, Any]:
    """The deploy config's watchtower job, pointed at `target` and scraping every second."""
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == JOB]
    assert len(jobs) == 1, f"{DEPLOY_CONFIG} has no single scrape job named {JOB!r}"
    job = {**jobs[0], "scrape_interval": "1s", "scrape_timeout": "1s",
           "static_configs": [{"targets": [target]}]}
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}


class Prometheus:
    """A Prometheus subprocess whose config, TSDB and log all live in one tmp dir."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, target: str) -> None:
        """Scrape `target` (host:port); fails the test, never skips it, if Prometheus is not installed."""
        if not PROMETHEUS.exists():
            pytest.fail(f"{PROMETHEUS} is missing: `make test` installs it (apt-get install prometheus)")
        workdir = self.workdir
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps(_scrape_config(target), indent=2))  # JSON is YAML
        self.log = workdir / "prometheus.log"
        self.url = f"http://127.0.0.1:{free_port()}"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address={self.url.removeprefix('http://')}"],
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=5)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; [] while Prometheus is still starting."""
        assert self.process is not None, "start() first"
        exited = self.process.poll()
        assert exited is None, f"prometheus exited ({exited}):\n{self.log_tail()}"
        try:
            response = self.http.get("/api/v1/query", params={"query": promql})
        except httpx.TransportError:
            return []
        if response.status_code == 503:  # TSDB not ready yet
            return []
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str) -> list[dict[str, Any]]:
        """Poll until the query returns series; fail with Prometheus' own view if it never does."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                try:
                    targets = self.http.get("/api/v1/targets").text
                except httpx.TransportError as error:
                    targets = f"unreachable ({error})"
                pytest.fail(f"no series for {promql} within {DEADLINE_S:.0f}s\ntargets: {targets}\n"
                            f"log:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        if self.process is None:
            return
        self.http.close()
        stop_process(self.process)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus for the test to start; always terminated, even when the test fails."""
    server = Prometheus(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_prometheus_scrapes_served_predictions(client: TestClient, models: BuiltModels, live_server: str,
                                                prometheus: Prometheus) -> None:
    factories.register_tensor(client, models)
    factories.serve(client, "churn", factories.make_frame(60))
    target = urlsplit(live_server).netloc
    prometheus.start(target)

    predictions = prometheus.wait_for(f'watchtower_predictions_total{{job="{JOB}"}}')
    assert [(series["metric"], series["value"][1]) for series in predictions] == [
        ({"__name__": "watchtower_predictions_total", "job": JOB, "instance": target,
          "model": "churn", "role": "primary"}, "60")]

    up = prometheus.wait_for(f'up{{job="{JOB}"}}')
    assert [(series["metric"]["instance"], series["value"][1]) for series in up] == [(target, "1")]

    # The gauges read from the database at scrape time come through the same scrape.
    active = prometheus.wait_for(f'watchtower_active_version{{job="{JOB}", model="churn"}}')
    roles = {series["metric"]["role"]: series["value"][1] for series in active}
    assert roles == {"primary": "1", "fallback": "0"}

    latency = prometheus.wait_for(
        f'watchtower_prediction_latency_seconds_count{{job="{JOB}", model="churn"}}')
    assert [series["value"][1] for series in latency] == ["1"]  # one predict request of 60 rows


def test_dashboard_queries_only_exposed_metrics(client: TestClient) -> None:
    """Every metric the Grafana dashboard queries is one that /metrics exposes."""
    exposition = client.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE))
    names = {name for name, _ in families}  # counters are typed with their _total suffix
    names |= {f"{name}_{part}" for name, kind in families if kind == "histogram"
              for part in ("bucket", "sum", "count")}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [variable["query"] for variable in dashboard["templating"]["list"]]
    queried = {name for expr in exprs for name in re.findall(r"\bwatchtower_[a-z_]+", expr)}
    assert queried, "the dashboard queries no watchtower metric"
    assert queried <= names, f"not exposed by /metrics: {sorted(queried - names)}"
