"""Backtests replay real stored monitor passes: the same policy gives what the live run did, a stricter one less."""

import copy
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests import factories
from tests.factories import BuiltModels
from tests.processes import ROOT, database_url
from watchtower.clock import utcnow
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

BLOCKS = [{"detectors": [{"name": "stat_drift"}], "min_events": 50, "window_events": 100}]
DRIFT = {"name": "drift", "match": {"kinds": ["input_drift"]}, "severity": "SEV2", "confirm": {"k": 2, "n": 3},
         "actions": ["pause_pipeline", "swap_model", "open_incident", "notify"]}
POLICY: dict[str, Any] = {"grouping": "model", "rules": [DRIFT]}
OPERATOR = {"author": "ana", "reason": "fixed the upstream join"}
TALLY = ("incidents", "pages", "pauses", "swaps")


def _policy(k: int, n: int) -> dict[str, Any]:
    policy = copy.deepcopy(POLICY)
    policy["rules"][0]["confirm"] = {"k": k, "n": n}
    return policy


def _pass(client: TestClient, runtime: Runtime, seed: int, breach: bool) -> None:
    """Serve one block of 100 events (shifted or not) and check it in a real monitor pass."""
    factories.serve(client, "churn", factories.make_frame(100, seed=seed, shift=1.5 if breach else 0.0))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == ("breached" if breach else "ok"), (seed, result.outcomes)


def _live(client: TestClient, runtime: Runtime, models: BuiltModels) -> tuple[datetime, datetime]:
    """Live passes under POLICY (2 of 3): breaching and healthy blocks, an operator's restore, resume and
    resolution between them. Returns the period they span."""
    factories.register_tensor(client, models, monitors=BLOCKS)
    assert client.put("/models/churn/policy", json=POLICY).status_code == 200
    since = utcnow()
    for seed, breach in enumerate([True, False, True, True, False, False, True], start=40):
        _pass(client, runtime, seed, breach)
    incident = client.get("/incidents").json()["hits"]
    assert len(incident) == 1
    for path in ("/models/churn/restore", "/pipelines/churn/resume", f"/incidents/{incident[0]['id']}/resolve"):
        assert client.post(path, json=OPERATOR).status_code == 200, path
    for seed, breach in enumerate([True, False, True], start=60):
        _pass(client, runtime, seed, breach)
    return since, utcnow()


def _backtest(client: TestClient, policy: dict[str, Any], since: datetime, until: datetime) -> dict[str, Any]:
    response = client.post("/models/churn/policy/backtest",
                           json={"policy": policy, "since": since.isoformat(), "until": until.isoformat()})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _tally(replay: dict[str, Any]) -> tuple[int, ...]:
    return tuple(replay["tally"][k] for k in TALLY)


def _lines(replay: dict[str, Any]) -> list[tuple[str, str, list[str], list[str]]]:
    return [(p["at"], p["monitor"], p["fired"], p["actions"]) for p in replay["passes"]]


def test_a_backtest_of_the_live_policy_equals_what_the_live_run_did(client: TestClient, runtime: Runtime,
                                                                    models: BuiltModels) -> None:
    since, until = _live(client, runtime, models)
    result = _backtest(client, POLICY, since, until)

    # Live: passes 3 (2 of 3 confirmed) and 8 (after the operator's restore, resume and resolution) opened,
    # paged, paused and swapped; 4 and 10 only added to the open incident; 1 and 7 waited for confirmation.
    assert _tally(result["actual"]) == (2, 2, 2, 2)
    assert _tally(result["candidate"]) == _tally(result["actual"])
    assert _tally(result["current"]) == _tally(result["actual"])
    assert _lines(result["candidate"]) == _lines(result["actual"]) == _lines(result["current"])
    every = ["pause_pipeline", "swap_model", "open_incident", "notify"]
    assert [p["actions"] for p in result["candidate"]["passes"]] == [every, [], every, []]
    assert result["passes"] == result["verdicts"] == 10 and result["current_scope"] == "model"
    assert result["actual"]["tally"]["held"] == 0 and result["actual"]["tally"]["failed"] == 0


def test_a_stricter_candidate_pages_less_than_a_looser_one(client: TestClient, runtime: Runtime,
                                                           models: BuiltModels) -> None:
    since, until = _live(client, runtime, models)
    strict, loose = _backtest(client, _policy(3, 3), since, until), _backtest(client, _policy(1, 1), since, until)
    assert strict["candidate"]["tally"]["pages"] == 0 and strict["candidate"]["passes"] == []
    # 1 of 1 fires on every breaching block: pass 1 opens, 3, 4 and 7 add to it; after the resolution, 8 opens
    # and 10 adds to it.
    assert _tally(loose["candidate"]) == (2, 2, 2, 2)
    assert [len(p["actions"]) for p in loose["candidate"]["passes"]] == [4, 0, 0, 0, 4, 0]
    assert strict["candidate"]["tally"]["pages"] < loose["candidate"]["tally"]["pages"]
    # Both are compared with the same replay of the current policy and what it really did.
    assert strict["current"] == loose["current"] and strict["actual"] == loose["actual"]
    # A dry-run candidate costs nothing and shows what it would have done.
    dry = _backtest(client, POLICY | {"dry_run": True}, since, until)["candidate"]
    assert _tally(dry) == (0, 0, 0, 0) and [p["actions"] for p in dry["passes"]] == [[], [], [], []]
    assert dry["passes"][0]["dry_run"] == ["pause_pipeline", "swap_model", "open_incident", "notify"]


def test_confirmation_counts_the_passes_before_the_period(client: TestClient, runtime: Runtime,
                                                          models: BuiltModels) -> None:
    _live(client, runtime, models)
    runs = sorted(client.get("/models/churn/checks").json(), key=lambda r: r["id"])
    since, until = datetime.fromisoformat(runs[2]["created_at"]), datetime.fromisoformat(runs[6]["created_at"])
    result = _backtest(client, POLICY, since, until)
    # Pass 3 confirms 2 of 3 with pass 1, stored before the period: it fires as it did live.
    assert result["passes"] == 5
    assert _lines(result["candidate"]) == _lines(result["actual"])
    assert [p["at"] for p in result["candidate"]["passes"]][:1] == [runs[2]["created_at"]]
    assert _tally(result["candidate"]) == _tally(result["actual"]) == (1, 1, 1, 1)


def test_an_empty_period_costs_nothing(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    since, until = _live(client, runtime, models)
    before = _backtest(client, POLICY, since - timedelta(days=2), since - timedelta(days=1))
    assert before["passes"] == before["verdicts"] == 0
    for replay in ("actual", "current", "candidate"):
        assert before[replay] == {"tally": dict.fromkeys((*TALLY, "held", "failed"), 0), "passes": []}
    factories.register_tensor(client, models, name="quiet")
    quiet = client.post("/models/quiet/policy/backtest", json={"policy": POLICY})
    assert quiet.status_code == 200 and quiet.json()["passes"] == 0
    assert quiet.json()["current_scope"] == "builtin" and _tally(quiet.json()["candidate"]) == (0, 0, 0, 0)
    assert 29 <= (datetime.fromisoformat(quiet.json()["until"]) - datetime.fromisoformat(
        quiet.json()["since"])).days <= 30


def test_bad_requests_are_422_naming_the_field(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=BLOCKS)
    now = utcnow()
    bad_action = copy.deepcopy(POLICY)
    bad_action["rules"][0]["actions"] = ["reboot"]
    cases = [
        ({"policy": bad_action}, "body.policy.rules.0.actions.0"),
        ({"policy": _policy(3, 2)}, "body.policy.rules.0.confirm"),
        ({"policy": POLICY, "since": "yesterday"}, "body.since"),
        ({"policy": POLICY, "since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()}, "body.until"),
        ({"policy": POLICY, "since": (now - timedelta(days=400)).isoformat()}, "body.since"),
        ({"policy": POLICY, "window": "30d"}, "body.window"),
        ({}, "body.policy"),
    ]
    for body, field in cases:
        response = client.post("/models/churn/policy/backtest", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], (field, response.json())
    missing = client.post("/models/nope/policy/backtest", json={"policy": POLICY})
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_the_cli_prints_candidate_against_current(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                  db: Engine, tmp_path: Path) -> None:
    _live(client, runtime, models)
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(_policy(3, 3)))
    env = os.environ | {"WATCHTOWER_DATABASE_URL": database_url(db), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "watchtower.cli", "backtest", "churn", "--since", "1d",
                           "--policy", str(strict)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line[:34].strip(): line[34:].split() for line in done.stdout.splitlines()}
    assert rows["what happened (model policy)"] == ["2", "2", "2", "2"]
    assert rows["current policy, replayed"] == ["2", "2", "2", "2"]
    assert rows["candidate"] == ["0", "0", "0", "0"]
    assert "Backtest of churn" in done.stdout and "10 passes, 10 with a verdict" in done.stdout

    loose = tmp_path / "loose.json"
    loose.write_text(json.dumps(_policy(1, 1)))
    shown = subprocess.run([sys.executable, "-m", "watchtower.cli", "backtest", "churn", "--policy", str(loose)],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("pause_pipeline, swap_model, open_incident, notify") == 2
    assert shown.stdout.count("nothing new") == 4

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(_policy(3, 2)))
    refused = subprocess.run([sys.executable, "-m", "watchtower.cli", "backtest", "churn", "--policy", str(broken)],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "rules.0.confirm" in refused.stderr and done.stdout not in refused.stdout
