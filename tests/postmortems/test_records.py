"""Taxonomies as data, write-ups with revisions, similar incidents, import/export and analytics."""

import json
import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from postmortems.taxonomy import load_index
from tests import factories
from tests.conftest import SlackRecorder
from tests.factories import BuiltModels
from tests.postmortems.helpers import file, move, search_ids
from watchtower.delivery import deliver_outbox
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

TEAM_TAXONOMY = """
namespace: payments
title: Payments team failures
nodes:
  - {key: pay-vendor, label: Vendor outage}
  - {key: pay-vendor-fx, label: FX rates feed stale, parent: pay-vendor, root_cause: true, ml: non-ml}
"""


def test_builtin_and_custom_taxonomies(client: TestClient) -> None:
    stored = {t["namespace"]: t for t in client.get("/taxonomies").json()}
    assert {"watchtower", "how-ml-breaks", "gmf"} <= set(stored)
    hmb = [n for n in stored["how-ml-breaks"]["nodes"] if n.get("parent") == "hmb"]
    assert len(hmb) == 19 and all("ml" in n or n["key"] == "hmb-client-assumption" for n in hmb)
    added = client.post("/taxonomies", content=TEAM_TAXONOMY, headers={"Content-Type": "application/yaml"})
    assert added.status_code == 201 and added.json()["builtin"] is False
    iid = file(client, "FX feed froze", tags=["pay-vendor-fx"])["id"]
    assert search_ids(client, tag="pay-vendor") == [iid]
    assert move(client, iid, "resolved").status_code == 200
    assert move(client, iid, "postmortem_complete").status_code == 200  # a custom root cause counts
    again = client.post("/taxonomies", content=TEAM_TAXONOMY)
    assert again.status_code == 409
    clash = client.post("/taxonomies", json={"namespace": "other", "title": "x",
                                             "nodes": [{"key": "config-change", "label": "dup"}]})
    assert clash.status_code == 422 and "taken" in clash.json()["errors"][0]["reason"]
    cycle = client.post("/taxonomies", json={"namespace": "loop", "title": "x", "nodes": [
        {"key": "a1", "label": "a", "parent": "b1"}, {"key": "b1", "label": "b", "parent": "a1"}]})
    assert cycle.status_code == 422 and "cycle" in cycle.json()["errors"][0]["reason"]
    bad_key = client.post("/taxonomies", json={"namespace": "x", "title": "x", "nodes": [{"key": "Bad Key",
                                                                                          "label": "b"}]})
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["field"] == "body.nodes.0.key"


@pytest.mark.usefixtures("act_on_any_breach")
def test_writeup_is_prefilled_then_revised(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=[{"detectors": [{"name": "stat_drift"}], "min_events": 100}])
    factories.serve(client, "churn", factories.make_frame(150, seed=5, shift=1.0))
    iid = run_monitor(runtime, "churn", "default").incident_id
    draft = client.get(f"/incidents/{iid}/writeup").json()
    assert draft["revision"] == 0 and draft["author"] == "watchtower"
    text = draft["markdown"]
    for expected in ("# Postmortem: churn", "| f1 | stat_drift | ks |", "**pause_pipeline**", "serving switched to",
                     "## Action items", "## Root cause", "feature distribution shift".title().lower()[:7]):
        assert expected.lower() in text.lower(), expected
    saved = client.put(f"/incidents/{iid}/writeup", json={"author": "ana", "markdown": text + "\nMore.",
                                                          "base_revision": 0})
    assert saved.status_code == 200 and saved.json()["revision"] == 1 and saved.json()["author"] == "ana"
    stale = client.put(f"/incidents/{iid}/writeup", json={"author": "bo", "markdown": "mine", "base_revision": 0})
    assert stale.status_code == 409 and "revision 1" in stale.json()["detail"]
    client.put(f"/incidents/{iid}/writeup", json={"author": "bo", "markdown": "Rewritten by bo: zebrafish",
                                                  "base_revision": 1})
    history = client.get(f"/incidents/{iid}/writeup/revisions").json()
    assert [(r["revision"], r["author"]) for r in history] == [(1, "ana"), (2, "bo")]
    assert search_ids(client, q="zebrafish") == [iid]  # write-ups are searched
    markdown = client.get(f"/incidents/{iid}/export", params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text == "Rewritten by bo: zebrafish"
    exported = client.get(f"/incidents/{iid}/export").json()
    assert exported["id"] == iid and exported["writeup"]["revision"] == 2 and exported["timeline"]


@pytest.mark.usefixtures("act_on_any_breach")
def test_similar_incidents_are_linked_alerted_and_dismissable(client: TestClient, runtime: Runtime,
                                                              models: BuiltModels, slack: SlackRecorder) -> None:
    runtime.settings.slack_token = __import__("pydantic").SecretStr("xoxb-test")
    runtime.settings.slack_base_url = slack.base_url
    drift_only = [{"detectors": [{"name": "stat_drift"}], "min_events": 100}]
    factories.register_tensor(client, models, monitors=drift_only)
    unrelated = file(client, "Payments API timeout", summary="vendor down")["id"]
    factories.serve(client, "churn", factories.make_frame(150, seed=5, shift=1.0))
    first = run_monitor(runtime, "churn", "default").incident_id
    assert client.get(f"/incidents/{first}").json()["similar"] == []
    client.put(f"/incidents/{first}/tags/training-serving-skew", json={"author": "ana"})
    move(client, first, "resolved", reason="fixed the feature join")
    second = run_monitor(runtime, "churn", "default").incident_id
    similar = client.get(f"/incidents/{second}").json()["similar"]
    assert [s["id"] for s in similar] == [first] and unrelated not in [s["id"] for s in similar]
    assert similar[0]["score"] > 0.5 and "feature f1" in similar[0]["reasons"]
    assert "tag feature-distribution-shift" in similar[0]["reasons"]  # both were suggested it by the detector
    assert similar[0]["root_causes"] == ["Training-serving skew"]
    assert "fixed the feature join" in similar[0]["fixed_by"]
    deliver_outbox(runtime)
    last_time = json.dumps(slack.calls[-1]["body"]["blocks"])
    assert f"#{first}" in last_time and "Training-serving skew" in last_time and "fixed the feature join" in last_time
    dismissed = client.post(f"/incidents/{second}/similar/{first}/dismiss", json={"author": "ana"})
    assert dismissed.status_code == 200 and dismissed.json()["similar"][0]["dismissed"] is True
    from sqlmodel import Session

    from postmortems.service import get_incident
    from postmortems.similar import link_similar

    with Session(runtime.engine) as session:  # recomputing keeps a person's "not similar"
        assert link_similar(session, get_incident(session, second)) == []
        session.commit()
    assert client.get(f"/incidents/{second}").json()["similar"][0]["dismissed"] is True


def test_bulk_import_is_all_or_nothing(client: TestClient) -> None:
    history = {"incidents": [
        {"title": "2019: unjoined examples trained as negatives", "author": "import-bot", "severity": "SEV1",
         "opened_at": "2019-03-01T10:00:00Z", "impact_started_at": "2019-03-01T06:00:00Z",
         "acknowledged_at": "2019-03-01T10:05:00Z", "resolved_at": "2019-03-02T10:00:00Z",
         "status": "postmortem_complete", "completed_at": "2019-03-05T00:00:00Z",
         "tagged": [{"tag": "hmb-failed-join"}], "writeup": "# Postmortem\nLate joins.",
         "timeline": [{"at": "2019-03-01T10:05:00Z", "kind": "note", "text": "paged data-eng"}],
         "action_items": [{"title": "alert on join lag", "status": "done"}]},
        {"title": "2020: canary skipped", "author": "import-bot", "tagged": [{"tag": "hmb-config-not-canaried",
                                                                               "confidence": "suggested"}]},
    ]}
    bad = json.loads(json.dumps(history))
    bad["incidents"][1]["tagged"][0]["tag"] = "nope"
    rejected = client.post("/incidents/import", json=bad)
    assert rejected.status_code == 422 and rejected.json()["errors"][0]["field"] == "body.incidents.1.tagged.0.tag"
    assert client.get("/incidents").json()["total"] == 0
    ids = client.post("/incidents/import", json=history).json()["ids"]
    old = client.get(f"/incidents/{ids[0]}").json()
    assert old["status"] == "postmortem_complete" and old["source"] == "import"
    assert old["durations"]["time_to_detect"] == 4 * 3600 and old["durations"]["time_to_resolve"] == 24 * 3600
    assert old["action_items"][0]["status"] == "done"
    assert search_ids(client, q="paged data-eng") == [ids[0]]


def test_analytics_by_category_ml_share_and_metrics(client: TestClient, runtime: Runtime) -> None:
    client.post("/incidents/import", json={"incidents": [
        {"title": "join", "author": "a", "opened_at": "2026-01-10T00:00:00Z", "impact_started_at":
         "2026-01-09T23:00:00Z", "resolved_at": "2026-01-10T02:00:00Z", "tagged": [{"tag": "hmb-failed-join"}]},
        {"title": "cache", "author": "a", "opened_at": "2026-02-10T00:00:00Z", "resolved_at": "2026-02-10T04:00:00Z",
         "tagged": [{"tag": "hmb-cache-invalidation"}]},
        {"title": "drift", "author": "a", "opened_at": "2026-02-11T00:00:00Z",
         "tagged": [{"tag": "concept-drift", "confidence": "suggested"}]},
    ]})
    summary = client.get("/analytics").json()
    categories = {c["category"]: c for c in summary["by_category"]}
    assert categories["hmb"]["incidents"] == 2 and categories["hmb"]["mttr_s"] == 3 * 3600
    assert categories["hmb-failed-join"]["mttd_s"] == 3600
    assert summary["ml_share"] == {"ml": 1, "non-ml": 2, "unknown": 0}
    assert {"month": "2026-02", "category": "hmb", "incidents": 1} in summary["over_time"]
    confirmed = client.get("/analytics", params={"confirmed_only": True}).json()
    assert confirmed["ml_share"] == {"ml": 0, "non-ml": 2, "unknown": 1}
    metrics = client.get("/metrics").text
    assert 'watchtower_incidents_by_category{category="hmb"} 2.0' in metrics
    assert 'watchtower_incident_mean_seconds{category="hmb",stage="resolve"} 10800.0' in metrics
    assert 'watchtower_incidents_by_ml_axis{axis="non-ml"} 2.0' in metrics


def test_analytics_means_and_months_equal_each_incidents_own_durations(client: TestClient, runtime: Runtime) -> None:
    """The summary aggregates in SQL; it must agree with lifecycle.durations per incident (the API's), including
    missing stages, a start after the open (counted as 0 s), sub-second times and untagged incidents."""
    rng = random.Random(3)
    tag_sets = [["hmb-failed-join"], ["hmb-cache-invalidation", "concept-drift"], [], ["config-change"]]
    batch = []
    for i in range(24):
        opened = datetime(2026, 1 + i % 3, 1 + i, 6, 0, tzinfo=UTC) + timedelta(seconds=rng.uniform(0, 3600))
        later = {name: (opened + timedelta(seconds=rng.uniform(0, 20_000))).isoformat()
                 for name in ("acknowledged_at", "mitigated_at", "resolved_at") if rng.random() < 0.7}
        impact = opened + timedelta(seconds=rng.uniform(-900, 3600) * (1 if i % 5 else -1))
        batch.append({"title": f"i{i}", "author": "a", "opened_at": opened.isoformat(),
                      "impact_started_at": impact.isoformat() if i % 4 else None, **later,
                      "tagged": [{"tag": t} for t in tag_sets[i % 4]]})
    assert client.post("/incidents/import", json={"incidents": batch}).status_code == 201
    with Session(runtime.engine) as session:
        index = load_index(session)
    expected: dict[str, list[dict[str, Any]]] = {}
    months: Counter[tuple[str, str]] = Counter()
    for hit in client.get("/incidents", params={"limit": 200}).json()["hits"]:
        incident = client.get(f"/incidents/{hit['id']}").json()
        keys = {k for t in incident["tags"] for k in [t["tag"], *index.ancestors(t["tag"])]} or {"untagged"}
        for key in keys:
            expected.setdefault(key, []).append(incident["durations"])
            months[(incident["opened_at"][:7], key)] += 1
    summary = client.get("/analytics").json()
    got = {c["category"]: c for c in summary["by_category"]}
    for key, spans in expected.items():
        assert got[key]["incidents"] == len(spans)
        for field, stage in (("mttd_s", "time_to_detect"), ("mtta_s", "time_to_acknowledge"),
                             ("mttm_s", "time_to_mitigate"), ("mttr_s", "time_to_resolve")):
            values = [s[stage] for s in spans if s[stage] is not None]
            if values:
                assert got[key][field] == pytest.approx(statistics.mean(values), abs=0.051), (key, field)
            else:
                assert got[key][field] is None, (key, field)
    assert any(s["time_to_detect"] == 0 for spans in expected.values() for s in spans)  # the clamp was exercised
    assert {(m["month"], m["category"]): m["incidents"] for m in summary["over_time"]
            if m["category"] in expected} == dict(months)
