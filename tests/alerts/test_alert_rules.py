"""The Prometheus alert rules shipped in deploy/prometheus: valid, unit-tested with promtool, and naming only
metrics the app really exposes. Needs /usr/bin/promtool (Debian's `prometheus`, installed by `make test`)."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "watchtower.rules.yml"
PROMTOOL = Path("/usr/bin/promtool")


def _promtool(*args: str, cwd: Path) -> str:
    if not PROMTOOL.exists():
        pytest.fail(f"{PROMTOOL} is missing: `make test` installs it (apt-get install prometheus)")
    run = subprocess.run([str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_config_and_rules_are_valid() -> None:
    out = _promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in out and "rules/watchtower.rules.yml" in out
    assert "SUCCESS: 7 rules found" in _promtool("check", "rules", RULES.name, cwd=RULES.parent)


def test_each_alert_fires_on_its_failure_and_not_before() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "watchtower.test.yml", cwd=RULES.parent)


def test_rules_name_only_metrics_the_app_exposes(client: TestClient) -> None:
    exposed = set(re.findall(r"^# TYPE (\w+) (\w+)", client.get("/metrics").text, re.M))
    names = {name for name, _ in exposed} | {f"{name}_total" for name, kind in exposed if kind == "counter"}
    groups = yaml.safe_load(RULES.read_text())["groups"]
    used = {m for g in groups for r in g["rules"] for m in re.findall(r"watchtower_\w+", r["expr"])}
    assert used and used <= names, f"rules use metrics the app does not expose: {sorted(used - names)}"
