"""Two real `watchtower serve` replicas on one database act once; killing the leader hands over within the lease.

The replicas run the scheduler (lease TTL 3 s, renewed every 0.5 s), a monitor every 2 s on drifted traffic,
Slack through slack-sdk to a local recorder and the pipeline's webhook to another.
"""

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests import factories
from tests.conftest import SlackRecorder
from tests.factories import BuiltModels
from tests.processes import Server, database_url, launch_serve, wait_serving
from watchtower.actions.models import ActionRun
from watchtower.checks.models import CheckRun
from watchtower.scheduler.models import JobRun, SchedulerLease

INTERVAL_S, TTL_S, RENEW_S = 2, 3.0, 0.5
JOB = "monitor:churn:default"


def _wait(what: str, predicate: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _runs(db: Engine) -> list[JobRun]:
    with Session(db) as session:
        return list(session.exec(select(JobRun).where(JobRun.job == JOB, JobRun.status == "ok")).all())


def _lease(db: Engine) -> SchedulerLease:
    with Session(db) as session:
        lease = session.get(SchedulerLease, "scheduler")
        assert lease is not None
        return lease


def _assert_acted_once(db: Engine, slack: SlackRecorder, webhook: SlackRecorder) -> None:
    with Session(db) as session:
        actions = Counter(a.detail.split("'")[0] for a in session.exec(select(ActionRun)).all())
        checks = session.exec(select(CheckRun.detector, CheckRun.created_at)).all()
    assert actions["paused pipeline "] == 1, actions
    assert sum(n for detail, n in actions.items() if detail.startswith("serving switched to")) == 1, actions
    posts = [c for c in slack.calls if c["path"] == "/api/chat.postMessage" and "thread_ts" not in c["body"]]
    assert len(posts) == 1, slack.calls  # one alert (edits and thread replies of it aside)
    assert len(webhook.calls) == 1 and webhook.calls[0]["body"]["event"] == "pipeline.paused"
    passes = Counter(detector for detector, _ in checks)
    ok_slots = len(_runs(db))
    assert set(passes.values()) == {ok_slots}, (passes, ok_slots)  # every detector once per slot, no more
    slots_hit = Counter((detector, int(at.timestamp()) // INTERVAL_S) for detector, at in checks)
    assert max(slots_hit.values()) == 1, "two passes of one monitor in one slot"


@pytest.mark.usefixtures("act_on_any_breach")  # pause, swap, incident and page on the first breach
def test_two_replicas_act_once_and_hand_over(client: TestClient, models: BuiltModels, db: Engine,
                                             slack: SlackRecorder, webhook: SlackRecorder, tmp_path: Path) -> None:
    factories.register_tensor(client, models, pipeline={"name": "churn-etl", "webhook_url": webhook.base_url},
                              monitors=[{"interval_s": INTERVAL_S, "min_events": 50}])
    factories.serve(client, "churn", factories.make_frame(300, seed=7, shift=3.0))
    env = {"SCHEDULER_ENABLED": "true", "SLACK_TOKEN": "xoxb-test", "SLACK_BASE_URL": slack.base_url,
           "OUTBOX_INTERVAL_S": "1", "LEASE_TTL_S": str(TTL_S), "LEASE_RENEW_S": str(RENEW_S),
           "MIN_WINDOW_EVENTS": "50"}
    servers: list[Server] = [launch_serve(database_url(db), tmp_path / f"replica-{i}.log", **env) for i in (0, 1)]
    try:
        for server in servers:
            wait_serving(server)
        _wait("the alert and the webhook", lambda: bool(slack.calls) and bool(webhook.calls))
        settled = len(_runs(db)) + 3
        _wait("three more monitor slots", lambda: len(_runs(db)) >= settled)
        _assert_acted_once(db, slack, webhook)

        lease = _lease(db)
        [leader] = [s for s in servers if f":{s.process.pid}:" in lease.holder]
        [follower] = [s for s in servers if s is not leader]
        leader.kill()  # no lease release: the follower must wait for the lease to expire
        killed_at = time.time()
        _wait("the follower to take the lease", lambda: f":{follower.process.pid}:" in _lease(db).holder, 30)
        took_over_at = time.time()
        new = _lease(db)
        assert new.epoch == lease.epoch + 1
        # Within the lease time: it expired no later than TTL after the kill, and the follower renews every RENEW_S.
        assert took_over_at - killed_at <= TTL_S + RENEW_S + 2.0, took_over_at - killed_at
        before = len(_runs(db))
        _wait("the new leader's monitor passes", lambda: len(_runs(db)) >= before + 2)
        assert {r.epoch for r in _runs(db)[before:]} == {new.epoch}
        _assert_acted_once(db, slack, webhook)  # the new leader repeats no action of the old one
    finally:
        for server in servers:
            server.stop()
