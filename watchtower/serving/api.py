"""Predict through Watchtower: the active ONNX graph scores, and every prediction becomes an event."""

import time
import uuid

import pandas as pd
from fastapi import APIRouter, Request
from sqlmodel import Session

from watchtower.auth import WriteAccess
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.errors import Invalid, field_error, problem_responses
from watchtower.events.api import checked_features
from watchtower.events.schemas import Prediction, PredictRequest, PredictResponse
from watchtower.events.store import insert_events
from watchtower.registry.archive import require_active
from watchtower.registry.schemas import ModelName
from watchtower.registry.service import current_version, get_model, schema_of, version_label

router = APIRouter(tags=["serving"], dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422))


@router.post("/models/{name}/predict", response_model=PredictResponse)
def predict(name: ModelName, body: PredictRequest, request: Request) -> PredictResponse:
    """Score rows with the model's active version (primary, or fallback after a swap) and record them."""
    state = request.app.state
    # Which graph serves is read per request: a swap committed by the monitor takes effect on the next call.
    with Session(state.engine) as session:
        model = get_model(session, name)
        require_active(model)
        version = current_version(session, model.id, model.active_role)  # type: ignore[arg-type]
    ids = body.ids or [uuid.uuid4().hex for _ in body.instances]
    if len(ids) != len(body.instances):
        raise Invalid("ids and instances differ in length",
                      errors=[field_error("body.ids", f"{len(ids)} ids for {len(body.instances)} instances")])
    with Session(writer(state.engine)) as session:  # a refused batch is counted for schema_mismatch, as on /events
        rows = checked_features(session, model, body.instances, "body.instances.{i}")
    schema = schema_of(model)
    onnx = state.cache.get(state.engine, model.id, version.sha256, schema)
    started = time.perf_counter()
    predictions, proba = onnx.predict_scores(pd.DataFrame.from_records(rows, columns=list(schema)))
    latency = time.perf_counter() - started
    label = version_label(version)
    now = utcnow()
    per_row_ms = latency * 1000 / len(rows)
    with Session(writer(state.engine)) as session:
        insert_events(session, model, [
            {"event_id": i, "ts": now, "features": r, "prediction": p, "latency_ms": per_row_ms, "version": label,
             "received_at": now,
             "scores": dict(zip(onnx.classes, proba[k].tolist(), strict=True)) if proba is not None else None}
            for k, (i, r, p) in enumerate(zip(ids, rows, predictions, strict=True))
        ])
        session.commit()
    state.metrics.predictions.labels(model.name, version.role).inc(len(rows))
    state.metrics.prediction_latency.labels(model.name).observe(latency)
    return PredictResponse(model=model.name, role=version.role, version=label, latency_ms=latency * 1000,
                           predictions=[Prediction(id=i, prediction=p) for i, p in zip(ids, predictions, strict=True)])
