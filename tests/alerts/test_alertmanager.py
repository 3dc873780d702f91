"""The Alertmanager receiver with hand-made webhook (version 4) payloads: open, update, page, silence, resolve,
inhibit, and 422s naming the field for payloads it cannot take."""

from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.alertmanager import open_key
from postmortems.models import Incident, TimelineEntry
from tests import factories
from tests.conftest import SlackRecorder
from tests.factories import BuiltModels
from watchtower.delivery import deliver_outbox
from watchtower.monitor import run_monitor
from watchtower.registry.models import MonitoredModel
from watchtower.runtime import Runtime

GROUP = '{}/{severity="critical"}:{alertname="FeatureStoreDown"}'
PROM = "http://prometheus.test:9090/graph?g0.expr=up%7Bjob%3D%22feature-store%22%7D+%3D%3D+0&g0.tab=1"


def alert(fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": "FeatureStoreDown", "severity": "critical", **labels},
            "annotations": {"summary": f"feature store down ({fingerprint})"},
            "startsAt": "2026-11-28T08:59:30.123Z",
            "endsAt": "2026-11-28T09:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": PROM, "fingerprint": fingerprint, "someFutureField": {"x": 1}}


def notification(*alerts: dict[str, Any], status: str = "firing", group_key: str = GROUP,
                 summary: str | None = "Feature store is down", **extra: Any) -> dict[str, Any]:
    common = {"alertname": alerts[0]["labels"]["alertname"], "severity": "critical"}
    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": status, "receiver": "watchtower",
            "groupLabels": {"alertname": common["alertname"]}, "commonLabels": common,
            "commonAnnotations": {"summary": summary} if summary else {},
            "externalURL": "http://alertmanager.test:9093", "notification_reason": "new_alert_in_group",
            "alerts": list(alerts), **extra}


def _post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/alertmanager", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _timeline(engine: Engine, incident_id: int) -> list[tuple[str, str]]:
    with Session(engine) as session:
        return [(e.kind, e.text) for e in session.exec(select(TimelineEntry).where(
            TimelineEntry.incident_id == incident_id).order_by(col(TimelineEntry.id)))]


def test_a_firing_group_opens_one_incident_pages_once_and_its_resolution_resolves_it(
        client: TestClient, runtime: Runtime, db: Engine, slack: SlackRecorder) -> None:
    runtime.settings.slack_token, runtime.settings.slack_base_url = SecretStr("xoxb-test"), slack.base_url
    first = _post(client, notification(alert("a1", model="ranker")))
    assert first["created"] is True and first["page"] == "queued" and first["status"] == "open"
    incident_id = first["incident_id"]
    incident = client.get(f"/incidents/{incident_id}").json()
    assert incident["source"] == "alertmanager" and incident["title"] == "Feature store is down"
    assert incident["severity"] == "SEV1"  # severity="critical"
    assert incident["affected_models"] == ["ranker"] and incident["model"] is None  # not a monitored model
    evidence = incident["evidence"]
    assert evidence["group_key"] == GROUP and evidence["common_labels"]["alertname"] == "FeatureStoreDown"
    assert [(a["fingerprint"], a["status"], a["generator_url"], a["ends_at"]) for a in evidence["alerts"]] == [
        ("a1", "firing", PROM, None)]
    assert evidence["alerts"][0]["labels"]["model"] == "ranker"
    assert incident["impact_started_at"].startswith("2026-11-28T08:59:30")
    with Session(db) as session:
        stored = session.get(Incident, incident_id)
        assert stored is not None and stored.open_key == open_key(GROUP) == stored.group_key
    page = client.get(f"/postmortems/incidents/{incident_id}").text
    assert f'href="{PROM.replace("&", "&amp;")}"' in page and "No detector evidence" not in page

    assert deliver_outbox(runtime) == 1 and len(slack.calls) == 1
    assert "Feature store is down" in slack.calls[0]["body"]["text"]

    # The same group again with a second alert: the same incident, no second page.
    second = _post(client, notification(alert("a1", model="ranker"), alert("a2", model="ranker")))
    assert (second["incident_id"], second["created"], second["page"]) == (incident_id, False, "none")
    evidence = client.get(f"/incidents/{incident_id}").json()["evidence"]
    assert sorted(a["fingerprint"] for a in evidence["alerts"]) == ["a1", "a2"]
    assert factories.queued_pages(db) == [incident_id]

    resolved = _post(client, notification(alert("a1", "resolved", model="ranker"),
                                          alert("a2", "resolved", model="ranker"), status="resolved"))
    assert (resolved["incident_id"], resolved["status"]) == (incident_id, "resolved")
    body = client.get(f"/incidents/{incident_id}").json()
    assert body["status"] == "resolved" and body["resolved_at"] is not None
    assert {a["status"] for a in body["evidence"]["alerts"]} == {"resolved"}
    assert body["evidence"]["alerts"][0]["ends_at"].startswith("2026-11-28T09:05:00")
    kinds = [kind for kind, _ in _timeline(db, incident_id)]
    assert kinds == ["alertmanager", "notify", "alertmanager", "alertmanager", "status"], kinds
    assert "all resolved" in _timeline(db, incident_id)[3][1]
    metric = runtime.metrics.registry.get_sample_value
    assert metric("watchtower_alertmanager_notifications_total", {"status": "firing"}) == 2
    assert metric("watchtower_alertmanager_notifications_total", {"status": "resolved"}) == 1

    # It fires again later: a new incident (the old one stays resolved, with its postmortem).
    again = _post(client, notification(alert("a1", model="ranker")))
    assert again["created"] is True and again["incident_id"] != incident_id


def test_title_severity_and_a_group_resolved_after_a_person_resolved_it(client: TestClient, db: Engine) -> None:
    key = '{}:{alertname="DiskFull"}'
    warning = alert("d1", alertname="DiskFull", severity="warning")
    warning["generatorURL"] = "javascript:alert(1)"  # shown as text, never a link
    opened = _post(client, notification(warning, group_key=key, summary=None))
    incident = client.get(f"/incidents/{opened['incident_id']}").json()
    assert incident["title"] == "DiskFull" and incident["severity"] == "SEV3"
    assert 'href="javascript:' not in client.get(f"/postmortems/incidents/{opened['incident_id']}").text
    # A worse alert joins the group: the severity only goes up.
    _post(client, notification(warning, alert("d2", alertname="DiskFull", severity="critical"), group_key=key))
    assert client.get(f"/incidents/{opened['incident_id']}").json()["severity"] == "SEV1"

    moved = client.post(f"/incidents/{opened['incident_id']}/status", json={"status": "resolved", "author": "ada"})
    assert moved.status_code == 200
    late = _post(client, notification(alert("d1", "resolved", alertname="DiskFull"), status="resolved",
                                      group_key=key))
    assert (late["incident_id"], late["status"]) == (opened["incident_id"], "resolved")
    assert _timeline(db, opened["incident_id"])[-1][0] == "alertmanager"  # recorded, not moved again
    unknown = _post(client, notification(alert("x", "resolved"), status="resolved", group_key="{}:never-fired"))
    assert unknown["incident_id"] is None and "no incident" in unknown["detail"]


def test_silences_apply_to_alertmanager_incidents_through_their_labels(client: TestClient, runtime: Runtime,
                                                                        db: Engine) -> None:
    silence = client.post("/silences", json={
        "matchers": [{"name": "model", "value": "ranker"}, {"name": "kind", "value": "pipeline"}],
        "ends_at": "2099-01-01T00:00:00Z", "created_by": "ada", "comment": "feature store migration"}).json()
    held = _post(client, notification(alert("s1", model="ranker", kind="pipeline")))
    assert held["created"] is True and held["page"] == "silenced"
    assert ("silenced", f"page silenced by silence #{silence['id']} (ada: feature store migration)") in _timeline(
        db, held["incident_id"])
    assert runtime.metrics.registry.get_sample_value("watchtower_breaches_silenced_total", {"model": "ranker"}) == 1
    other = _post(client, notification(alert("s2", model="ranker", kind="latency"), group_key="{}:latency"))
    assert other["page"] == "queued"
    assert factories.queued_pages(db) == [other["incident_id"]]


def test_payloads_it_cannot_take_are_422s_naming_the_field_and_writes_need_the_token(client: TestClient) -> None:
    good = notification(alert("b1"))
    for change, field in [
        ({"version": "3"}, "body.version"),
        ({"groupKey": None}, "body.groupKey"),
        ({"status": "pending"}, "body.status"),
        ({"alerts": []}, "body.alerts"),
        ({"alerts": [{**alert("b1"), "fingerprint": ""}]}, "body.alerts.0.fingerprint"),
        ({"alerts": [{**alert("b1"), "startsAt": "yesterday"}]}, "body.alerts.0.startsAt"),
        ({"alerts": [{**alert("b1"), "labels": {"alertname": 3}}]}, "body.alerts.0.labels.alertname"),
    ]:
        response = client.post("/alertmanager", json=good | change)
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], (change, response.json())
    missing = {k: v for k, v in good.items() if k != "receiver"}
    assert client.post("/alertmanager", json=missing).json()["errors"][0]["field"] == "body.receiver"
    broken = client.post("/alertmanager", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    assert client.post("/alertmanager", json=good, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/alertmanager", json=good, headers={"Authorization": ""}).status_code == 401


def test_an_alertmanager_pipeline_alert_inhibits_the_drift_page_of_its_model(
        client: TestClient, runtime: Runtime, models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=[{"detectors": [{"name": "stat_drift"}], "min_events": 100}])
    assert client.put("/models/churn/policy", json={"recovery": None, "rules": [
        {"name": "drift", "actions": ["open_incident", "notify"]}]}).status_code == 200
    pipeline = notification(alert("p1", alertname="FeatureFeedStale", model="churn", kind="pipeline"),
                            group_key='{}:{alertname="FeatureFeedStale"}', summary="churn feature feed is stale")
    cause = _post(client, pipeline)
    with Session(db) as session:
        churn = session.exec(select(MonitoredModel).where(MonitoredModel.name == "churn")).one()
        assert client.get(f"/incidents/{cause['incident_id']}").json()["model"] == "churn" and churn.id
    factories.serve(client, "churn", factories.make_frame(300, seed=6, shift=1.5))
    drift = run_monitor(runtime, "churn", "default")
    assert drift.incident_id is not None and drift.incident_id != cause["incident_id"]
    assert factories.queued_pages(db) == [cause["incident_id"]]
    assert ("inhibited", f"page inhibited by incident #{cause['incident_id']} (churn feature feed is stale): "
                         "Alertmanager alert FeatureFeedStale (pipeline) is firing; one cause, one page") in _timeline(
        db, drift.incident_id)

    resolved = notification(alert("p1", "resolved", alertname="FeatureFeedStale", model="churn", kind="pipeline"),
                            group_key='{}:{alertname="FeatureFeedStale"}', status="resolved")
    assert _post(client, resolved)["status"] == "resolved"
    run_monitor(runtime, "churn", "default")
    assert factories.queued_pages(db) == [cause["incident_id"], drift.incident_id]
