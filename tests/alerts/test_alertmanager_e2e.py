"""A real Alertmanager, fed by an alert rule of a real Prometheus scraping a target this test controls, sends
a firing and then a resolved group to a live Watchtower: the incident opens, then resolves.

Needs /usr/bin/prometheus and /usr/bin/prometheus-alertmanager (Debian's `prometheus` and
`prometheus-alertmanager`, installed by `make test`): the test fails, never skips, without them.
"""

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.outbox import OutboxMessage
from postmortems.models import Incident, TimelineEntry
from tests.conftest import TOKEN, free_port
from tests.processes import stop_process

PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.yml"
DEADLINE_S = 90.0
T = TypeVar("T")


class Feed:
    """The scrape target: a gauge `feature_feed_up{model="churn"}` the test sets to 1 or 0."""

    def __init__(self) -> None:
        self.up = 1
        self.prometheus = ""  # where the Prometheus scraping it answers
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = ('# TYPE feature_feed_up gauge\n'
                        f'feature_feed_up{{model="churn"}} {feed.up}\n').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """A subprocess with its log in a tmp dir; always stopped by the fixture that made it."""

    def __init__(self, binary: Path, args: list[str], workdir: Path, name: str) -> None:
        if not binary.exists():
            pytest.fail(f"{binary} is missing: `make test` installs it (apt-get install prometheus "
                        "prometheus-alertmanager)")
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([str(binary), *args], cwd=workdir, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-25:])

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def stack(tmp_path: Path, live_server: str) -> Iterator[tuple[Feed, list[Daemon]]]:
    """Feed target -> Prometheus (rule every 1 s) -> Alertmanager (deploy config, 1 s timings) -> Watchtower."""
    feed, daemons = Feed(), []
    try:
        am_port = free_port()
        token_file = tmp_path / "watchtower_token"
        token_file.write_text(TOKEN)
        config = yaml.safe_load(DEPLOY_CONFIG.read_text())
        config["route"] |= {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
        [hook] = config["receivers"][0]["webhook_configs"]
        hook["url"] = f"{live_server}/alertmanager"
        hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        (tmp_path / "alertmanager.yml").write_text(json.dumps(config))  # JSON is YAML
        daemons.append(Daemon(ALERTMANAGER, [
            f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="], tmp_path, "alertmanager"))

        rules = {"groups": [{"name": "feeds", "interval": "1s", "rules": [{
            "alert": "FeatureFeedDown", "expr": "feature_feed_up == 0", "for": "0s",
            "labels": {"severity": "critical", "kind": "pipeline"},
            "annotations": {"summary": "The churn feature feed is down"}}]}]}
        (tmp_path / "rules.yml").write_text(json.dumps(rules))
        prometheus = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [{"job_name": "feed", "static_configs": [{"targets": [feed.target]}]}]}
        (tmp_path / "prometheus.yml").write_text(json.dumps(prometheus))
        prometheus_port = free_port()
        daemons.append(Daemon(PROMETHEUS, [
            f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}", "--rules.alert.resend-delay=1s"], tmp_path,
            "prometheus"))
        feed.prometheus = f"http://127.0.0.1:{prometheus_port}"
        yield feed, daemons
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        feed.close()


def _wait(what: str, probe: Callable[[], T | None], daemons: list[Daemon]) -> T:
    """Poll until `probe` returns something; fail with both daemons' logs after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        for daemon in daemons:
            assert daemon.process.poll() is None, f"{daemon.log.name} exited:\n{daemon.tail()}"
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            logs = "\n\n".join(f"== {d.log.name}\n{d.tail()}" for d in daemons)
            pytest.fail(f"{what}: not within {DEADLINE_S:.0f}s\n{logs}")
        time.sleep(0.25)


def _scraped(feed: Feed) -> str | None:
    try:
        response = httpx.get(f"{feed.prometheus}/api/v1/query", params={"query": "feature_feed_up"}, timeout=5)
    except httpx.TransportError:
        return None  # still starting
    result = response.json()["data"]["result"] if response.status_code == 200 else []
    return str(result[0]["value"][1]) if result else None


def _incident(db: Engine, status: str | None = None) -> Incident | None:
    with Session(db) as session:
        query = select(Incident).where(Incident.source == "alertmanager")
        if status is not None:
            query = query.where(Incident.status == status)
        return session.exec(query).first()


def test_a_real_alertmanager_opens_then_resolves_an_incident(stack: tuple[Feed, list[Daemon]], db: Engine) -> None:
    feed, daemons = stack
    # The feed starts healthy: once Prometheus has scraped it, nothing has fired.
    _wait("Prometheus scraping the feed", lambda: _scraped(feed), daemons)
    assert _incident(db) is None
    feed.up = 0
    opened = _wait("the incident opened by Alertmanager's firing group", lambda: _incident(db, "open"), daemons)
    assert opened.title == "The churn feature feed is down" and opened.severity == "SEV1"
    assert opened.affected_models == ["churn"]
    [alert] = opened.evidence["alerts"]
    assert alert["status"] == "firing" and alert["labels"] == {
        "alertname": "FeatureFeedDown", "severity": "critical", "kind": "pipeline", "model": "churn",
        "instance": feed.target, "job": "feed"}
    assert alert["generator_url"].startswith("http://") and "/graph?g0.expr=" in alert["generator_url"]
    assert alert["fingerprint"] and opened.evidence["group_key"].startswith("{}:")
    assert opened.evidence["receiver"] == "watchtower"
    with Session(db) as session:  # paged: the Slack alert is in the outbox
        assert session.exec(select(OutboxMessage.incident_id)).all() == [opened.id]

    feed.up = 1
    resolved = _wait("the incident resolved by Alertmanager's resolved group",
                     lambda: _incident(db, "resolved"), daemons)
    assert resolved.id == opened.id and resolved.evidence["alerts"][0]["status"] == "resolved"
    with Session(db) as session:
        entries = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == opened.id)
                               .order_by(col(TimelineEntry.id))).all()
    assert entries[0].text.startswith("Opened by Alertmanager (watchtower)")
    assert entries[-1].kind == "status" and "every alert of the Alertmanager group resolved" in entries[-1].text
