"""Guards: an action item that adds a detector to a monitor, validated, shown with its runs, linked back when
it catches the same failure again."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from postmortems.diagnosis.proposals import propose_guards
from postmortems.models import ActionItem
from tests import factories
from tests.factories import BuiltModels
from tests.postmortems.helpers import file, move
from watchtower.checks.models import CheckRun
from watchtower.monitor import run_monitor_pass
from watchtower.runtime import Runtime

BLOCKS = [{"detectors": [{"name": "native_drift"}], "min_events": 100, "window_events": 300}]
OPEN_ONLY = {"grouping": "model", "rules": [{"name": "any", "severity": "SEV3", "actions": ["open_incident"]}]}
RANGE_GUARD = {"monitor": "default", "detector": "out_of_range", "params": {"features": ["f1"], "max_share": 0.02}}


def _item(client: TestClient, incident_id: int, guard: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"title": "Range check on f1", "author": "ana"}
    return client.post(f"/incidents/{incident_id}/action-items", json=body | ({"guard": guard} if guard else {}))


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def _detectors(client: TestClient, model: str = "churn") -> list[dict[str, Any]]:
    monitors = client.get(f"/models/{model}").json()["monitors"]
    return [d for m in monitors if m["name"] == "default" for d in m["detectors"]]


def test_a_guard_adds_its_detector_to_the_monitor_and_is_not_yet_run(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=BLOCKS)
    incident = file(client, "f1 arrived in milliseconds", models=["churn"])
    response = _item(client, incident["id"], RANGE_GUARD)
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["guard"] == {"model": "churn", "monitor": "default", "detector": "out_of_range",
                             "params": {"features": ["f1"], "max_share": 0.02}, "state": "not_yet_run", "runs": {},
                             "last_run_at": None, "last_fired_at": None, "caught": []}
    added = _detectors(client)[-1]
    assert added == {"name": "out_of_range", "params": {"features": ["f1"], "max_share": 0.02},
                     "guard": {"incident_id": incident["id"], "action_item_id": item["id"]}}
    read = client.get(f"/incidents/{incident['id']}").json()
    assert read["action_items"][0]["guard"]["state"] == "not_yet_run"
    entry = read["timeline"][-1]
    assert entry["kind"] == "guard" and "churn/default: out_of_range" in entry["text"]

    # Re-sending the monitor as read keeps the guard's link (the detector spec accepts it back).
    resent = client.put("/models/churn/monitors/default", json={"detectors": _detectors(client),
                                                                "min_events": 100, "window_events": 300})
    assert resent.status_code == 200, resent.text
    assert _detectors(client)[-1]["guard"] == {"incident_id": incident["id"], "action_item_id": item["id"]}


@pytest.mark.parametrize(("guard", "field"), [
    (RANGE_GUARD | {"params": {"max_share": 2}}, "body.guard.params.max_share"),
    (RANGE_GUARD | {"params": {"bogus": 1}}, "body.guard.params.bogus"),
    (RANGE_GUARD | {"params": {"features": ["nope"]}}, "body.guard.params.features.0"),
    (RANGE_GUARD | {"detector": "no_such_detector"}, "body.guard.detector"),
    (RANGE_GUARD | {"monitor": "nightly"}, "body.guard.monitor"),
    (RANGE_GUARD | {"model": "other"}, "body.guard.model"),
    (RANGE_GUARD | {"model": "nobody"}, "body.guard.model"),
])
def test_a_bad_guard_is_a_422_naming_the_field_and_stores_nothing(client: TestClient, models: BuiltModels,
                                                                  db: Engine, guard: dict[str, Any],
                                                                  field: str) -> None:
    factories.register_tensor(client, models, monitors=BLOCKS)
    factories.register_tensor(client, models, name="other")  # a model the incident did not affect
    incident = file(client, "f1 arrived in milliseconds", models=["churn"])
    before = _detectors(client), _detectors(client, "other")
    assert field in _fields(_item(client, incident["id"], guard))
    assert (_detectors(client), _detectors(client, "other")) == before
    with Session(db) as session:
        assert session.exec(select(ActionItem)).all() == []
    assert client.post("/incidents/999999/action-items", json={"title": "x", "author": "ana",
                                                                  "guard": RANGE_GUARD}).status_code == 404


def test_proposals_from_evidence_pin_the_shifted_features_the_skew_stages_and_a_volume_floor() -> None:
    evidence = {"monitor": "default", "window": {"start": "2026-01-01T00:00:00+00:00",
                                                 "end": "2026-01-01T02:00:00+00:00"},
                "checks": [
                    {"check_run_id": 1, "detector": "native_drift", "status": "breached",
                     "findings": [{"feature": "f1"}, {"feature": "color"}]},
                    {"check_run_id": 2, "detector": "feature_skew", "status": "breached",
                     "findings": [{"feature": "f2"}]},
                    {"check_run_id": 3, "detector": "volume", "status": "breached",
                     "findings": [{"feature": "__dataset__", "test": "volume_drop", "score": 10.0,
                                   "expected": 400.0}]},
                    {"check_run_id": 4, "detector": "missing_values", "status": "ok", "findings": []}]}
    ranges = {"f1": (-3.5, 3.25), "f2": (-4.0, 4.0)}  # color is categorical: no range
    stages = {2: {"baseline_stage": "features", "compare_stage": "serving", "max_distance": 0.2}}
    rng, skew, floor = propose_guards(evidence, ranges, stages)
    assert (rng.detector, rng.params) == ("out_of_range", {"features": ["f1"], "max_share": 0.01})
    assert "f1 in [-3.5, 3.25]" in rng.reason
    assert (skew.detector, skew.params) == ("feature_skew", {"baseline_stage": "features", "compare_stage": "serving",
                                                             "max_mismatch_rate": 0.01})
    assert "between features and serving (f2)" in skew.reason
    assert floor.detector == "volume" and floor.params["expected_per_hour"] == 200.0
    assert floor.params["max_drop"] == 0.5 and "10 events where 400 were expected" in floor.reason
    assert propose_guards({"checks": []}, ranges) == []


def _inject(client: TestClient, seed: int, unit_change: bool) -> None:
    frame = factories.make_frame(300, seed=seed)
    if unit_change:  # f1 and f2 arrive in thousandths: the failure of the first incident
        frame[["f1", "f2"]] *= 1000
    factories.serve(client, "churn", frame)


def test_a_guard_from_a_postmortem_catches_the_next_occurrence_and_links_back(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=BLOCKS)
    assert client.put("/models/churn/policy", json=OPEN_ONLY).status_code == 200
    _inject(client, seed=3, unit_change=True)
    [first_pass] = run_monitor_pass(runtime)
    first = first_pass.incident_id
    assert first_pass.status == "breached" and first is not None

    [proposal] = client.get(f"/incidents/{first}/guard-proposals").json()
    assert proposal["detector"] == "out_of_range" and proposal["params"]["features"] == ["f1", "f2"]
    guard = {k: proposal[k] for k in ("model", "monitor", "detector", "params")}
    item = _item(client, first, guard).json()
    assert item["guard"]["state"] == "not_yet_run"
    assert client.put(f"/incidents/{first}/tags/feature-definition-change",
                      json={"author": "ana", "confidence": "confirmed"}).status_code == 200
    assert move(client, first, "resolved", reason="upstream fixed the unit").status_code == 200

    _inject(client, seed=6, unit_change=False)  # healthy: the guard runs and stays quiet
    [quiet] = run_monitor_pass(runtime)
    assert quiet.status == "ok" and quiet.incident_id is None
    guard_read = client.get(f"/incidents/{first}").json()["action_items"][0]["guard"]
    assert guard_read["state"] == "quiet" and guard_read["runs"] == {"ok": 1}

    _inject(client, seed=7, unit_change=True)  # the same failure again
    [again] = run_monitor_pass(runtime)
    second = again.incident_id
    assert again.status == "breached" and second is not None and second != first
    caught = next(o for o in again.outcomes if o.detector == "out_of_range")
    assert caught.status == "breached" and {f.feature for f in caught.findings if f.breached} == {"f1", "f2"}
    with Session(db) as session:
        run = session.get(CheckRun, caught.check_run_id)
        assert run is not None and run.guard_item_id == item["id"]

    read = client.get(f"/incidents/{second}").json()
    assert read["caught_by"] == [{"incident_id": first, "incident_title": client.get(f"/incidents/{first}").json()
                                  ["title"], "action_item_id": item["id"], "detector": "out_of_range",
                                  "monitor": "default"}]
    assert any(e["kind"] == "guard_caught" and e["text"].startswith(f"Caught by guard from #{first}")
               for e in read["timeline"])
    learned = next(t for t in read["tags"] if t["signature"] == "learned")
    assert learned["tag"] == "feature-definition-change" and learned["confidence"] == "suggested"
    assert learned["reason"].startswith(f"confirmed on #{first}")

    source = client.get(f"/incidents/{first}").json()
    guard_read = source["action_items"][0]["guard"]
    assert guard_read["state"] == "fired" and guard_read["runs"] == {"ok": 1, "breached": 1}
    assert guard_read["caught"] == [second] and guard_read["last_fired_at"] is not None
    assert any(e["kind"] == "guard_fired" and f"caught #{second}" in e["text"] for e in source["timeline"])

    _inject(client, seed=8, unit_change=True)  # it keeps failing: the open incident grows, the link stays one
    [third] = run_monitor_pass(runtime)
    assert third.incident_id == second
    assert len(client.get(f"/incidents/{second}").json()["caught_by"]) == 1
    guard_read = client.get(f"/incidents/{first}").json()["action_items"][0]["guard"]
    assert guard_read["runs"] == {"ok": 1, "breached": 2} and guard_read["caught"] == [second]
