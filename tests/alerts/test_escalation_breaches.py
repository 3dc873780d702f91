"""Escalation from real monitor passes: a detector incident starts its chain with its page, an acknowledged
incident still breaching is re-paged after the ack timeout, and a silenced breach starts no chain."""

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from alerts.oncall.escalation import advance_escalations
from tests import factories
from tests.alerts.escalation_helpers import add_people, add_policy, dms, escalation, started, step, timeline
from tests.factories import BuiltModels
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

DRIFT = [{"detectors": [{"name": "stat_drift"}], "min_events": 100}]
PAGE_AT_ONCE = {"grouping": "model_monitor", "recovery": None,
                "rules": [{"name": "drift", "actions": ["open_incident", "notify"], "severity": "SEV3"}]}


def _drifting(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=DRIFT)
    assert client.put("/models/churn/policy", json=PAGE_AT_ONCE).status_code == 200
    factories.serve(client, "churn", factories.make_frame(300, seed=6, shift=1.5))


def test_an_acknowledged_incident_still_breaching_is_re_paged_after_the_ack_timeout(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    add_people(client)
    add_policy(client, "ml", [step(10, user="alice"), step(10, user="bob")])
    _drifting(client, models)
    incident_id = run_monitor(runtime, "churn", "default").incident_id
    assert incident_id is not None and dms(db, incident_id) == ["U0ALICE"]
    acked = client.post(f"/incidents/{incident_id}/status", json={"status": "acknowledged", "author": "alice"})
    assert acked.status_code == 200, acked.text
    assert advance_escalations(runtime, started(db, incident_id) + timedelta(minutes=10)) == 0  # stopped
    stopped = escalation(db, incident_id)
    assert stopped is not None and stopped.state == "acknowledged" and stopped.acked_at is not None
    ack_at = stopped.acked_at  # when alice acknowledged (her status change on the timeline)
    assert run_monitor(runtime, "churn", "default").incident_id == incident_id  # still breaching after the ack

    runtime.settings.ack_timeout_minutes = 0  # 0: never re-paged
    assert advance_escalations(runtime, ack_at + timedelta(days=2)) == 0
    runtime.settings.ack_timeout_minutes = 60
    assert advance_escalations(runtime, ack_at + timedelta(minutes=59)) == 0
    assert advance_escalations(runtime, ack_at + timedelta(minutes=60)) == 1
    assert dms(db, incident_id) == ["U0ALICE", "U0ALICE"]  # from step 1 again
    assert client.get(f"/incidents/{incident_id}").json()["status"] == "open"  # to be acknowledged again
    texts = [t for _, _, t in timeline(db, incident_id, "escalation", "status")]
    assert texts[-2].startswith("acknowledged → open: still breaching 60 min after the acknowledgement (last "
                                "breach at ")
    assert texts[-1] == "Re-paged after the ack timeout: the escalation restarts from step 1"
    assert advance_escalations(runtime, ack_at + timedelta(minutes=70)) == 1  # and escalates on to bob
    assert dms(db, incident_id) == ["U0ALICE", "U0ALICE", "U0BOB"]


def test_an_acknowledged_incident_that_stopped_breaching_is_not_re_paged(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    add_people(client)
    add_policy(client, "ml", [step(10, user="alice")])
    _drifting(client, models)
    incident_id = run_monitor(runtime, "churn", "default").incident_id
    assert incident_id is not None
    acked = client.post(f"/incidents/{incident_id}/status", json={"status": "acknowledged", "author": "bob"})
    ack_at = datetime.fromisoformat(acked.json()["acknowledged_at"]).astimezone(UTC)
    assert advance_escalations(runtime, ack_at + timedelta(minutes=1)) == 0
    assert advance_escalations(runtime, ack_at + timedelta(hours=5)) == 0  # no breach since the ack
    state = escalation(db, incident_id)
    assert state is not None and state.state == "acknowledged" and dms(db, incident_id) == ["U0ALICE"]


def test_a_silenced_breach_starts_no_chain(client: TestClient, runtime: Runtime, models: BuiltModels,
                                           db: Engine) -> None:
    add_people(client)
    add_policy(client, "ml", [step(10, user="alice")])
    _drifting(client, models)
    now = datetime.now(UTC)
    silence = client.post("/silences", json={
        "matchers": [{"name": "model", "is_regex": False, "is_equal": True, "value": "churn"}],
        "created_by": "ada", "comment": "retraining",
        "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()})
    assert silence.status_code == 201, silence.text
    incident_id = run_monitor(runtime, "churn", "default").incident_id
    assert incident_id is not None and timeline(db, incident_id, "silenced")
    assert escalation(db, incident_id) is None and dms(db, incident_id) == []
    assert advance_escalations(runtime, now + timedelta(hours=3)) == 0
    # Once the silence is gone, the held page goes out and the chain starts with it.
    assert client.delete(f"/silences/{silence.json()['id']}").status_code == 200
    assert run_monitor(runtime, "churn", "default").incident_id == incident_id
    assert escalation(db, incident_id) is not None and dms(db, incident_id) == ["U0ALICE"]
