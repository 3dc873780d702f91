"""Registering models: both ONNX input shapes, and every way a registration is refused with nothing stored."""

import json

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests import factories
from tests.factories import BuiltModels
from watchtower.registry.models import ModelVersion, MonitoredModel, Pipeline, ReferenceData


def _count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def _nothing_stored(engine: Engine) -> None:
    for table in (MonitoredModel, ModelVersion, ReferenceData, Pipeline):
        assert _count(engine, table) == 0, table


def test_tensor_input_model_registers_and_predicts(client: TestClient, models: BuiltModels) -> None:
    body = factories.register_tensor(client, models)
    assert body["input_style"] == "tensor" and body["active_version"] == "primary-v1"
    assert body["reference_rows"] == 1500
    rows = factories.make_frame(5, seed=9)
    response = client.post("/models/churn/predict", json={"instances": rows[factories.NUMERIC].to_dict("records")})
    assert response.status_code == 200
    out = response.json()
    assert out["role"] == "primary" and out["version"] == "primary-v1"
    assert [p["prediction"] for p in out["predictions"]] == [int(v) for v in _sklearn_rf(models, rows)]


def _sklearn_rf(models: BuiltModels, rows: factories.pd.DataFrame) -> list[int]:
    # The same forest, rebuilt, must agree with the ONNX graph the API ran.
    from watchtower.modelkit import tensor_classifier

    ref = models.reference
    built = tensor_classifier(ref[factories.NUMERIC], ref["label"])
    return list(built.estimator.predict(rows[factories.NUMERIC].to_numpy(factories.np.float32)))  # type: ignore[attr-defined]


def test_named_inputs_with_strings_register_and_predict(client: TestClient, models: BuiltModels) -> None:
    response = factories.register(client, factories.named_spec(), models.named_primary, models.named_fallback,
                                  models.reference, fmt="parquet")
    assert response.status_code == 201, response.text
    assert response.json()["input_style"] == "named"
    rows = [{"f1": 1.5, "f2": 1.0, "color": "red"}, {"f1": -2.0, "f2": -1.5, "color": "blue"}]
    out = client.post("/models/mixed/predict", json={"instances": rows}).json()
    assert [p["prediction"] for p in out["predictions"]] == [1, 0]


def test_invalid_onnx_file_is_rejected_and_nothing_stored(client: TestClient, models: BuiltModels, db: Engine) -> None:
    response = factories.register(client, factories.tensor_spec(), b"this is not onnx", models.tensor_fallback,
                                  models.reference)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "primary"
    assert "not a loadable ONNX model" in response.json()["errors"][0]["reason"]
    _nothing_stored(db)


def test_fallback_with_different_inputs_is_rejected(client: TestClient, models: BuiltModels, db: Engine) -> None:
    # The named-input graph expects f1, f2, color: it cannot stand in for a model fed f1..f4.
    response = factories.register(client, factories.tensor_spec(), models.tensor_primary, models.named_fallback,
                                  models.reference)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "fallback"
    assert error["reason"].startswith("the ONNX graph takes inputs 'f1', 'f2', 'color'; the spec's features are "
                                      "'f1', 'f2', 'f3', 'f4'; 'color' is in the graph but not in the spec; "
                                      "'f3' is in the spec but not in the graph; 'f4' is in the spec but not in "
                                      "the graph. Name one spec feature per graph input")
    _nothing_stored(db)


def test_fallback_with_different_output_kind_is_rejected(client: TestClient, models: BuiltModels, db: Engine) -> None:
    response = factories.register(client, factories.tensor_spec(), models.tensor_primary, models.regressor,
                                  models.reference)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "fallback"
    _nothing_stored(db)


def test_categorical_feature_cannot_feed_a_float_tensor(client: TestClient, models: BuiltModels) -> None:
    spec = factories.tensor_spec()
    spec["features"][3] = {"name": "f4", "type": "categorical"}
    response = factories.register(client, spec, models.tensor_primary, models.tensor_fallback, models.reference)
    assert response.status_code == 422
    assert "categorical" in response.json()["errors"][0]["reason"]


def test_bad_spec_names_each_field(client: TestClient, models: BuiltModels, db: Engine) -> None:
    spec = {"name": "bad name!", "task": "ranking", "features": [{"name": "f1", "type": "text"}]}
    response = factories.register(client, spec, models.tensor_primary, models.tensor_fallback, models.reference)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"spec.name", "spec.task", "spec.features.0.type"} <= fields
    not_json = client.post("/models", data={"spec": "{"}, files={
        "primary": ("p", models.tensor_primary), "fallback": ("f", models.tensor_fallback),
        "reference": ("r.csv", b"f1\n1\n")})
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["field"] == "spec"
    _nothing_stored(db)


def test_bad_detector_param_is_a_422_naming_the_field(client: TestClient, models: BuiltModels) -> None:
    spec = factories.tensor_spec(monitors=[{"detectors": [{"name": "evidently_drift", "params": {"p_value": 2}},
                                                           {"name": "nope"}]}])
    response = factories.register(client, spec, models.tensor_primary, models.tensor_fallback, models.reference)
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["spec.monitors.0.detectors.0.params.p_value", "spec.monitors.0.detectors.1.name"]


def test_reference_missing_a_feature_column(client: TestClient, models: BuiltModels, db: Engine) -> None:
    response = factories.register(client, factories.tensor_spec(), models.tensor_primary, models.tensor_fallback,
                                  models.reference.drop(columns=["f3"]))
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "reference", "reason": "missing column 'f3'"}]
    _nothing_stored(db)


def test_duplicate_model_name_conflicts(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    response = factories.register(client, factories.tensor_spec(), models.tensor_primary, models.tensor_fallback,
                                  models.reference)
    assert response.status_code == 409 and response.json()["title"] == "Conflict"


def test_writes_and_reads_need_a_token(app: object, models: BuiltModels) -> None:
    with TestClient(app) as anonymous:  # type: ignore[arg-type]
        response = factories.register(anonymous, factories.tensor_spec(), models.tensor_primary,
                                      models.tensor_fallback, models.reference)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.post("/models/x/labels", json={"labels": [{"id": "a", "label": 1}]},
                               headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "unknown, expired or revoked" in wrong.json()["detail"]
        assert anonymous.get("/models").status_code == 401


def test_new_version_is_refused_while_the_pipeline_is_paused(client: TestClient, models: BuiltModels,
                                                            db: Engine) -> None:
    factories.register_tensor(client, models)
    ok = client.post("/models/churn/versions", files={"primary": ("p.onnx", models.tensor_primary)})
    assert ok.status_code == 201
    assert [(v["role"], v["version"]) for v in ok.json()["versions"]] == [
        ("fallback", 1), ("primary", 1), ("primary", 2)]
    with Session(db) as session:
        pipeline = session.exec(select(Pipeline)).one()
        pipeline.paused = True
        session.add(pipeline)
        session.commit()
    refused = client.post("/models/churn/versions", files={"primary": ("p.onnx", models.tensor_primary)})
    assert refused.status_code == 409 and "paused" in refused.json()["detail"]
    assert _count(db, ModelVersion) == 3


def test_openapi_describes_problem_responses(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    register = schema["paths"]["/models"]["post"]["responses"]
    assert {"401", "409", "422"} <= set(register)
    assert "application/problem+json" in register["422"]["content"]
    assert "Problem" in schema["components"]["schemas"]
    assert json.dumps(schema)  # serialisable


def test_monitors_are_configured_through_the_api(client: TestClient, models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    bad = client.put("/models/churn/monitors/default", json={"detectors": [
        {"name": "native_drift", "params": {"correction": "holm"}}, {"name": "missing_values", "params": {"x": 1}}]})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["body.detectors.0.params.correction",
                                                           "body.detectors.1.params.x"]
    detectors = [{"name": "native_drift", "params": {"numeric_tests": ["ks", "psi"], "correction": "bonferroni"}},
                 {"name": "evidently_compatible_drift", "params": {}}]
    updated = client.put("/models/churn/monitors/default", json={"detectors": detectors, "interval_s": 30})
    assert updated.status_code == 200, updated.text
    monitor = updated.json()["monitors"][0]
    assert monitor["interval_s"] == 30 and [d["name"] for d in monitor["detectors"]] == [
        "native_drift", "evidently_compatible_drift"]
    added = client.put("/models/churn/monitors/hourly", json={"window_s": 3600})
    assert [m["name"] for m in added.json()["monitors"]] == ["default", "hourly"]
    assert client.put("/models/ghost/monitors/default", json={}).status_code == 404
