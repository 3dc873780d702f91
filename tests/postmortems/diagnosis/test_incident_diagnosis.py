"""The diagnosis on real incidents (SQLite and PostgreSQL): tags with reasons from a real monitor pass, shown on the
page, in Slack, in exports and in search; look-alikes not mis-tagged; re-evaluation when later breaches join."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.slack.store import incident_payload
from postmortems.models import Incident
from tests import factories
from tests.factories import BuiltModels
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

ONE_INCIDENT_PER_MODEL = {"grouping": "model", "rules": [{"name": "any-breach", "severity": "SEV3",
                                                          "actions": ["open_incident"]}]}
DRIFT = {"name": "drift", "detectors": [{"name": "native_drift"}, {"name": "prediction_drift"}], "min_events": 100}
KPI = {"name": "kpi", "detectors": [{"name": "accuracy", "params": {"min_labels": 50}}], "min_events": 50}


@pytest.fixture
def grouped_by_model(client: TestClient) -> None:
    response = client.put("/policy", json=ONE_INCIDENT_PER_MODEL)
    assert response.status_code == 200, response.text


def _tags(client: TestClient, incident_id: int) -> dict[str, dict[str, Any]]:
    return {t["tag"]: t for t in client.get(f"/incidents/{incident_id}").json()["tags"]}


@pytest.mark.usefixtures("grouped_by_model")
def test_a_unit_change_is_diagnosed_with_its_reason_everywhere(client: TestClient, runtime: Runtime,
                                                               models: BuiltModels, db: Engine) -> None:
    factories.register_tensor(client, models, monitors=[DRIFT])
    frame = factories.make_frame(300, seed=11)
    frame["f3"] *= 1000  # upstream now sends f3 in milliseconds
    factories.serve(client, "churn", frame)
    result = run_monitor(runtime, "churn", "drift")
    assert result.status == "breached" and result.incident_id is not None
    incident_id = result.incident_id

    unit = _tags(client, incident_id)["unit-change"]
    assert unit["confidence"] == "suggested" and unit["signature"] == "unit_change" and unit["root_cause"] is True
    assert 0.8 <= unit["score"] <= 0.95
    assert unit["reason"].startswith("f3 looks like the reference ×1000 (seconds → milliseconds): KS p ")
    assert "training-serving-skew" not in _tags(client, incident_id)

    page = client.get(f"/postmortems/incidents/{incident_id}")
    assert page.status_code == 200 and "f3 looks like the reference ×1000 (seconds → milliseconds)" in page.text
    markdown = client.get(f"/incidents/{incident_id}/export", params={"format": "markdown"}).text
    assert "- **Unit or definition change** (" in markdown and "f3 looks like the reference ×1000" in markdown
    exported = client.get(f"/incidents/{incident_id}/export").json()
    assert {t["tag"]: t["reason"] for t in exported["tags"]}["unit-change"] == unit["reason"]
    hits = client.get("/incidents", params={"q": "unit change"}).json()["hits"]
    assert [h["id"] for h in hits] == [incident_id]
    assert [h["id"] for h in client.get("/incidents", params={"q": "milliseconds"}).json()["hits"]] == [incident_id]
    with Session(db) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        payload = incident_payload(session, incident, channel="#ml", public_url="http://w.test", oncall=None)
    texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert any(t.startswith("*Likely cause:* Unit or definition change (") and "×1000" in t for t in texts)


@pytest.mark.usefixtures("grouped_by_model")
def test_a_seasonal_shift_of_every_feature_is_covariate_shift_not_skew(client: TestClient, runtime: Runtime,
                                                                        models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=[DRIFT])
    frame = factories.make_frame(300, seed=5)
    frame[factories.NUMERIC] += 0.7  # summer: every input moves a little
    factories.serve(client, "churn", frame)
    result = run_monitor(runtime, "churn", "drift")
    assert result.incident_id is not None
    tags = _tags(client, result.incident_id)
    assert not {"training-serving-skew", "unit-change", "broken-join"} & set(tags)
    assert tags["covariate-shift"]["reason"].startswith("inputs moved (f1, f2, f3, f4)")
    assert client.get("/analytics").json()["ml_share"] == {"ml": 1, "non-ml": 0, "unknown": 0}


@pytest.mark.parametrize("confirmed", [False, True])
@pytest.mark.usefixtures("grouped_by_model")
def test_a_later_kpi_breach_adds_concept_drift_and_withdraws_what_no_longer_holds(
        client: TestClient, runtime: Runtime, models: BuiltModels, confirmed: bool) -> None:
    factories.register_tensor(client, models, monitors=[DRIFT, KPI])
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=0.8))  # inputs move, no labels yet
    first = run_monitor(runtime, "churn", "drift")
    assert first.incident_id is not None
    incident_id = first.incident_id
    assert "covariate-shift" in _tags(client, incident_id) and "concept-drift" not in _tags(client, incident_id)
    if confirmed:
        decided = client.put(f"/incidents/{incident_id}/tags/covariate-shift",
                             json={"author": "ana", "confidence": "confirmed"})
        assert decided.status_code == 200, decided.text

    flipped = factories.make_frame(200, seed=8)
    flipped["label"] = 1 - flipped["label"]  # the world changed what the inputs mean
    factories.serve(client, "churn", flipped, labels=True)
    second = run_monitor(runtime, "churn", "kpi")
    assert second.status == "breached" and second.incident_id == incident_id

    incident = client.get(f"/incidents/{incident_id}").json()
    tags = {t["tag"]: t for t in incident["tags"]}
    concept = tags["concept-drift"]
    assert concept["signature"] == "covariate_concept" and "kpi-degradation" in tags
    assert concept["reason"].startswith("accuracy from labels 0.")
    assert "the input shift alone explains" in concept["reason"]
    timeline = [e["text"] for e in incident["timeline"]]
    assert any(t.startswith("Suggested tag concept-drift (") for t in timeline)
    withdrawn = [t for t in timeline if t.startswith("Withdrew suggested tag covariate-shift")]
    if confirmed:
        assert tags["covariate-shift"]["confidence"] == "confirmed" and withdrawn == []
    else:
        assert "covariate-shift" not in tags and len(withdrawn) == 1 and "(was: inputs moved" in withdrawn[0]


SCHEMA = {"name": "schema", "detectors": [{"name": "native_drift"}, {"name": "schema_mismatch"}], "min_events": 50}


@pytest.mark.usefixtures("grouped_by_model")
@pytest.mark.parametrize("monitor", [SCHEMA, {"name": "schema", "min_events": 50}], ids=["explicit", "default"])
def test_predict_refused_for_a_missing_feature_is_detected_and_diagnosed(client: TestClient, runtime: Runtime,
                                                                        models: BuiltModels,
                                                                        monitor: dict[str, object]) -> None:
    """Also with the default detectors: a model registered without naming any still sees its refused batches."""
    response = factories.register(client, factories.named_spec(monitors=[monitor]), models.named_primary,
                                  models.named_fallback, models.reference)
    assert response.status_code == 201, response.text
    frame = factories.make_frame(120, seed=3)
    for start in (0, 60):  # the join upstream lost `color`: every batch is refused
        rows = frame.iloc[start:start + 60][factories.MIXED_NUMERIC].to_dict("records")
        refused = client.post("/models/mixed/predict", json={"instances": rows})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.instances.0.color"
    result = run_monitor(runtime, "mixed", "schema")
    assert result.status == "breached" and result.incident_id is not None
    broken = _tags(client, result.incident_id)["broken-join"]
    assert broken["reason"] == "color missing from 120 refused events (100% of the window's 120)"
