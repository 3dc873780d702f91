"""A model's way out of a wrong schema: a version with a new schema and reference; archiving and unarchiving."""

import io
import json
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from postmortems.models import Incident
from tests import factories
from tests.factories import BuiltModels
from watchtower.checks.models import FittedThreshold
from watchtower.clock import utcnow
from watchtower.monitor import run_monitor, run_monitor_pass
from watchtower.registry.models import ModelVersion, Monitor, MonitoredModel, ReferenceData
from watchtower.runtime import Runtime
from watchtower.scheduler.monitors import scheduled_monitors

NAMED = [{"name": "f1", "type": "numeric"}, {"name": "f2", "type": "numeric"}, {"name": "color", "type": "categorical"}]
DECISION = {"author": "ana", "reason": "replaced by churn-v2"}


def _csv(frame: pd.DataFrame) -> tuple[str, bytes]:
    return "reference.csv", frame.to_csv(index=False).encode()


def _version(client: TestClient, primary: bytes, fallback: bytes | None = None, spec: dict[str, Any] | None = None,
             reference: pd.DataFrame | None = None, name: str = "churn") -> Any:
    files: dict[str, Any] = {"primary": ("primary.onnx", primary)}
    if fallback is not None:
        files["fallback"] = ("fallback.onnx", fallback)
    if reference is not None:
        files["reference"] = _csv(reference)
    data = {"spec": json.dumps(spec)} if spec is not None else None
    return client.post(f"/models/{name}/versions", data=data, files=files)


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def test_a_version_brings_a_new_schema_and_reference(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                     db: Engine) -> None:
    factories.register_tensor(client, models)
    threshold = {"mode": "quantile", "q": 0.95, "source": "reference_chunks", "chunk_rows": 150}
    assert client.put("/models/churn/monitors/blocks", json={"window_events": 100, "detectors": [
        {"name": "native_drift", "params": {"numeric_tests": ["psi"]}, "threshold": threshold}]}).status_code == 200
    factories.serve(client, "churn", factories.make_frame(120, seed=4))
    assert client.post("/models/churn/monitors/blocks/thresholds/refit").json() != []
    with Session(db) as session:  # as after a pass over the first block
        monitor = session.exec(select(Monitor).where(Monitor.name == "blocks")).one()
        monitor.cursor_ts = utcnow() - timedelta(hours=1)
        session.add(monitor)
        session.commit()
    assert _count(db, FittedThreshold) > 0
    before = utcnow()

    response = _version(client, models.named_primary, models.named_fallback, {"features": NAMED},
                        models.reference)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["features"] == [f | {"nullable": False} for f in NAMED]
    schemas = {(v["role"], v["version"]): [f["name"] for f in v["features"]] for v in body["versions"]}
    assert schemas == {("primary", 1): ["f1", "f2", "f3", "f4"], ("fallback", 1): ["f1", "f2", "f3", "f4"],
                       ("primary", 2): ["f1", "f2", "color"], ("fallback", 2): ["f1", "f2", "color"]}
    assert {v["target"] for v in body["versions"]} == {"label"}  # left out of the spec: the model's is kept
    assert body["reference_rows"] == len(models.reference)
    with Session(db) as session:
        assert _count(db, ReferenceData) == 2  # the first reference is kept as history
        assert _count(db, FittedThreshold) == 0  # re-fitted on the next pass, from the new reference
        cursor = session.exec(select(Monitor.cursor_ts).where(Monitor.name == "blocks")).one()
        assert cursor is not None and cursor >= before  # the next block starts after the new schema

    # The new graph serves, and events are checked against the new schema.
    served = client.post("/models/churn/predict", json={"instances": [{"f1": 0.1, "f2": 0.3, "color": "red"}]})
    assert served.status_code == 200 and served.json()["version"] == "primary-v2"
    old = client.post("/models/churn/predict", json={"instances": [{"f1": 0, "f2": 0, "f3": 0, "f4": 0}]})
    assert old.status_code == 422
    assert {e["field"] for e in old.json()["errors"]} == {"body.instances.0.f3", "body.instances.0.f4",
                                                          "body.instances.0.color"}
    event = {"id": "n1", "features": {"f1": 0.1, "f2": 0.3, "color": "blue"}, "prediction": 1}
    assert client.post("/models/churn/events", json={"events": [event]}).status_code == 200
    factories.serve(client, "churn", factories.make_frame(100, seed=5), columns=["f1", "f2", "color"])
    result = run_monitor(runtime, "churn", "blocks")
    assert result.status in ("ok", "breached")
    assert {f.feature for o in result.outcomes for f in o.findings} == {"f1", "f2", "color"}
    assert _count(db, FittedThreshold) > 0


def test_a_new_schema_needs_a_reference_and_a_fallback_that_takes_it(client: TestClient, models: BuiltModels,
                                                                     db: Engine) -> None:
    factories.register_tensor(client, models)
    versions = _count(db, ModelVersion)
    no_reference = _version(client, models.named_primary, models.named_fallback, {"features": NAMED})
    assert no_reference.status_code == 422
    assert [e["field"] for e in no_reference.json()["errors"]] == ["reference"]
    old_fallback = _version(client, models.named_primary, None, {"features": NAMED}, models.reference)
    assert old_fallback.status_code == 422 and old_fallback.json()["errors"][0]["field"] == "fallback"
    assert "the current fallback does not take the new schema" in old_fallback.json()["detail"]
    bad_spec = _version(client, models.named_primary, models.named_fallback, {"features": NAMED, "owner": "x"},
                        models.reference)
    assert bad_spec.status_code == 422 and bad_spec.json()["errors"][0]["field"] == "spec.owner"
    missing_column = _version(client, models.named_primary, models.named_fallback, {"features": NAMED},
                              models.reference.drop(columns=["color"]))
    assert missing_column.status_code == 422 and missing_column.json()["errors"][0]["field"] == "reference"
    with Session(db) as session:
        model = session.exec(select(MonitoredModel)).one()
        assert [f["name"] for f in model.features] == ["f1", "f2", "f3", "f4"]
    assert _count(db, ModelVersion) == versions and _count(db, ReferenceData) == 1


def test_renamed_features_reach_a_graph_already_loaded(client: TestClient, models: BuiltModels, db: Engine) -> None:
    """A tensor graph takes features by position: the same fallback serves the renamed schema (its loaded copy,
    fed by the old names, is replaced)."""
    factories.register_tensor(client, models)
    renamed = models.reference.rename(columns={f"f{i}": f"g{i}" for i in range(1, 5)})
    spec = {"features": [{"name": f"g{i}", "type": "numeric"} for i in range(1, 5)]}
    assert _version(client, models.tensor_primary, None, spec, renamed).status_code == 201
    with Session(db) as session:
        model = session.exec(select(MonitoredModel)).one()
        model.active_role = "fallback"  # as a swap would
        session.add(model)
        session.commit()
    row = {"g1": 0.5, "g2": 0.1, "g3": -0.2, "g4": 1.0}
    served = client.post("/models/churn/predict", json={"instances": [row]})
    assert served.status_code == 200, served.text
    assert served.json()["version"] == "fallback-v1"


def test_history_thresholds_refit_from_runs_after_the_new_reference(client: TestClient, runtime: Runtime,
                                                                    models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    threshold = {"mode": "mean_std", "k": 3, "min_samples": 3, "floor": 0.0}
    client.put("/models/churn/monitors/history", json={
        "detectors": [{"name": "missing_values", "threshold": threshold}], "min_events": 10})
    factories.serve(client, "churn", factories.make_frame(40, seed=2))
    for _ in range(4):
        run_monitor(runtime, "churn", "history")
    fitted = client.post("/models/churn/monitors/history/thresholds/refit").json()
    assert {f["source"] for f in fitted} == {"mean+3·std of 4 healthy scores"}
    buffer = io.BytesIO()
    models.reference.to_parquet(buffer, index=False)
    response = client.post("/models/churn/versions", files={
        "primary": ("p.onnx", models.tensor_primary), "reference": ("r.parquet", buffer.getvalue())})
    assert response.status_code == 201, response.text
    assert client.get("/models/churn/monitors/history/thresholds").json() == []
    refit = client.post("/models/churn/monitors/history/thresholds/refit").json()
    assert {f["source"] for f in refit} == {"static (only 0 healthy scores, need 3)"}


def test_an_archived_model_is_not_served_nor_monitored(client: TestClient, runtime: Runtime, models: BuiltModels,
                                                       db: Engine) -> None:
    factories.register_tensor(client, models)
    factories.register_tensor(client, models, name="other")
    served = factories.serve(client, "churn", factories.make_frame(5))
    incident = client.post("/incidents", json={"title": "churn drifted", "author": "ana", "models": ["churn"]})
    assert incident.status_code == 201
    assert client.post("/models/churn/archive", json={"author": "ana"}).status_code == 422  # reason required

    archived = client.post("/models/churn/archive", json=DECISION)
    assert archived.status_code == 200
    body = archived.json()
    assert body["archived_by"] == "ana" and body["archived_reason"] == DECISION["reason"]
    assert body["archived_at"] is not None
    again = client.post("/models/churn/archive", json=DECISION)
    assert again.status_code == 409 and "already archived since" in again.json()["detail"]

    refused = client.post("/models/churn/predict", json={"instances": [{"f1": 0, "f2": 0, "f3": 0, "f4": 0}]})
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    detail = refused.json()["detail"]
    assert "model 'churn' is archived since" in detail and "by ana (replaced by churn-v2)" in detail
    assert "POST /models/churn/unarchive" in detail
    event = {"id": "x", "features": {"f1": 0, "f2": 0, "f3": 0, "f4": 0}}
    for path, payload in [("events", {"events": [event]}), ("labels", {"labels": [{"id": served[0]["id"],
                                                                                   "label": 1}]}),
                          ("metrics", {"points": [{"name": "ctr", "value": 0.1}]})]:
        assert client.post(f"/models/churn/{path}", json=payload).status_code == 409, path
    assert client.put("/models/churn/monitors/default", json={}).status_code == 409
    assert _version(client, models.tensor_primary).status_code == 409

    # Not monitored: passes skip it, and the scheduler is not given it.
    assert [r.model for r in run_monitor_pass(runtime)] == ["other"]
    assert run_monitor(runtime, "churn", "default").status == "archived"
    with Session(db) as session:
        assert scheduled_monitors(session) == [("other", "default", 60)]
    # Its history stays readable, and its name taken.
    assert client.get("/models/churn").json()["archived_by"] == "ana"
    assert client.get("/models/churn/checks").status_code == 200
    assert client.get(f"/incidents/{incident.json()['id']}").status_code == 200
    assert factories.register(client, factories.tensor_spec(), models.tensor_primary, models.tensor_fallback,
                              models.reference).status_code == 409
    with Session(db) as session:
        assert session.exec(select(func.count()).select_from(Incident)).one() == 1

    unarchived = client.post("/models/churn/unarchive", json={"author": "bo", "reason": "still needed"})
    assert unarchived.status_code == 200 and unarchived.json()["archived_at"] is None
    assert client.post("/models/churn/unarchive", json=DECISION).status_code == 409
    assert client.post("/models/churn/predict", json={"instances": [{"f1": 0, "f2": 0, "f3": 0, "f4": 0}]}
                       ).status_code == 200
    with Session(db) as session:
        assert scheduled_monitors(session) == [("churn", "default", 60), ("other", "default", 60)]


@pytest.mark.parametrize("path", ["archive", "unarchive"])
def test_archiving_needs_write_access(app: Any, path: str) -> None:
    with TestClient(app) as anonymous:
        assert anonymous.post(f"/models/churn/{path}", json=DECISION).status_code == 401
