"""Incident lifecycle: transitions with who and when, derived durations, completion rules, reopen."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.factories import BuiltModels
from tests.postmortems.helpers import file, move
from watchtower.clock import utcnow
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime


def test_manual_incident_walks_the_whole_lifecycle(client: TestClient, runtime: Runtime) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    incident = file(client, "Feature store returned stale embeddings", summary="Ranking CTR fell 8%",
                    severity="SEV2", owner="bo", models=["ranker"], pipelines=["ranker-train"],
                    impact="CTR -8% for 3 hours", impact_numbers={"affected_requests": 120000},
                    impact_started_at=started.isoformat(), tags=["hmb-cache-invalidation"])
    assert incident["source"] == "manual" and incident["status"] == "open" and incident["owner"] == "bo"
    assert incident["tags"][0] | {"label": "x"} == {"tag": "hmb-cache-invalidation", "label": "x",
                                                     "confidence": "confirmed", "source": "person", "author": "ana",
                                                     "root_cause": True, "score": None, "reason": None}
    assert incident["durations"]["time_to_detect"] >= 7000
    iid = incident["id"]
    for status in ("acknowledged", "mitigated", "resolved", "postmortem_complete"):
        response = move(client, iid, status, author="bo", reason=f"now {status}")
        assert response.status_code == 200, response.text
    done = response.json()
    assert done["status"] == "postmortem_complete"
    for stamp in ("acknowledged_at", "mitigated_at", "resolved_at", "completed_at"):
        assert done[stamp] is not None
    assert all(done["durations"][k] is not None for k in done["durations"])
    statuses = [(e["details"]["from"], e["details"]["to"], e["author"]) for e in done["timeline"]
                if e["kind"] == "status"]
    assert statuses == [("open", "acknowledged", "bo"), ("acknowledged", "mitigated", "bo"),
                        ("mitigated", "resolved", "bo"), ("resolved", "postmortem_complete", "bo")]
    reopened = move(client, iid, "reopen", reason="it came back").json()
    assert reopened["status"] == "open" and reopened["resolved_at"] is None
    assert runtime.metrics.registry.get_sample_value("watchtower_incident_stage_seconds_count",
                                                     {"stage": "resolve"}) == 1


def test_invalid_transitions_and_completion_without_root_cause(client: TestClient) -> None:
    iid = file(client, "Labels arrived late")["id"]
    refused = move(client, iid, "postmortem_complete")
    assert refused.status_code == 409 and "it can move to" in refused.json()["detail"]
    move(client, iid, "resolved")
    blocked = move(client, iid, "postmortem_complete")
    assert blocked.status_code == 409 and "confirmed root-cause tag" in blocked.json()["detail"]
    # a confirmed tag that is not a root cause (a symptom) is not enough either
    client.put(f"/incidents/{iid}/tags/kpi-degradation", json={"author": "ana"})
    assert move(client, iid, "postmortem_complete").status_code == 409
    client.put(f"/incidents/{iid}/tags/hmb-labels-unavailable", json={"author": "ana"})
    assert move(client, iid, "postmortem_complete").status_code == 200
    bad = client.post(f"/incidents/{iid}/status", json={"status": "done", "author": "ana"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.status"


@pytest.mark.usefixtures("act_on_any_breach")
def test_detector_incident_durations_and_reopen_rules(client: TestClient, runtime: Runtime,
                                                      models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=[{"detectors": [{"name": "stat_drift"}], "min_events": 100,
                                                         "window_s": 600}])
    before = utcnow()
    factories.serve(client, "churn", factories.make_frame(150, seed=5, shift=1.0))
    served = utcnow()
    result = run_monitor(runtime, "churn", "default")
    incident = client.get(f"/incidents/{result.incident_id}").json()
    # From when the window's earliest event was served, not from the window's nominal start 600 s earlier.
    first = datetime.fromisoformat(incident["impact_started_at"])
    assert before <= first <= served
    assert incident["durations"]["time_to_detect"] == pytest.approx(
        (datetime.fromisoformat(incident["opened_at"]) - first).total_seconds())
    assert incident["durations"]["time_to_mitigate"] == 0  # pause and swap ran in the same pass
    assert incident["affected_models"] == ["churn"] and incident["affected_pipelines"] == ["churn"]
    assert incident["impact_numbers"] == {"predictions_served_by_fallback": 0}
    factories.serve(client, "churn", factories.make_frame(5, seed=6))
    assert client.get(f"/incidents/{result.incident_id}").json()["impact_numbers"] == {
        "predictions_served_by_fallback": 5}
    move(client, result.incident_id, "resolved")
    second = run_monitor(runtime, "churn", "default")
    assert second.incident_id not in (None, result.incident_id)
    clash = move(client, result.incident_id, "reopen")
    assert clash.status_code == 409 and "another incident" in clash.json()["detail"]


def test_edit_fields_notes_and_action_items(client: TestClient) -> None:
    iid = file(client, "Threshold misconfigured")["id"]
    edited = client.patch(f"/incidents/{iid}", json={"author": "cy", "severity": "SEV1", "owner": "cy",
                                                     "impact": "all fraud alerts muted"})
    assert edited.status_code == 200
    body = edited.json()
    assert body["severity"] == "SEV1" and body["severity_rule"] == "set by cy" and body["owner"] == "cy"
    assert body["timeline"][-1]["text"] == "Changed severity, owner, impact"
    client.post(f"/incidents/{iid}/notes", json={"author": "cy", "text": "Rolled back config 42"})
    item = client.post(f"/incidents/{iid}/action-items", json={"author": "cy", "title": "Validate thresholds in CI",
                                                               "owner": "dee", "due": "2026-12-01"})
    assert item.status_code == 201 and item.json()["status"] == "open"
    done = client.patch(f"/incidents/{iid}/action-items/{item.json()['id']}", json={"author": "dee", "status": "done"})
    assert done.json()["status"] == "done"
    final = client.get(f"/incidents/{iid}").json()
    assert [e["kind"] for e in final["timeline"]][-3:] == ["note", "action_item", "action_item"]
    assert final["action_items"][0]["due"] == "2026-12-01"
    missing = client.patch(f"/incidents/{iid}/action-items/9999", json={"author": "dee", "status": "done"})
    assert missing.status_code == 404
    assert client.post(f"/incidents/{iid}/notes", json={"author": "cy"}).status_code == 422
    unknown = client.post("/incidents", json={"title": "x", "author": "a", "tags": ["not-a-tag"]})
    assert unknown.status_code == 422 and unknown.json()["errors"][0] == {"field": "body.tags",
                                                                          "reason": "unknown tag 'not-a-tag'"}
