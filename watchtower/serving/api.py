"""Predict through Watchtower: the active ONNX graph scores, and every prediction becomes an event."""

import time
import uuid

from fastapi import APIRouter, Request
from sqlmodel import Session

from watchtower.auth import WriteAccess, audit
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.errors import Invalid, field_error, problem_responses
from watchtower.events.api import checked_features
from watchtower.events.schemas import Prediction, PredictRequest, PredictResponse
from watchtower.events.validation import check_rows
from watchtower.events.writer import log_mode
from watchtower.registry.archive import require_active
from watchtower.registry.schemas import ModelName

router = APIRouter(tags=["serving"], dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422, 503))


@router.post("/models/{name}/predict", response_model=PredictResponse)
def predict(name: ModelName, body: PredictRequest, request: Request) -> PredictResponse:
    """Score rows with the model's active version (primary, or fallback after a swap) and record them: durable
    mode answers once they are stored, async mode at once (see "Prediction logging" in the README)."""
    state = request.app.state
    runtime = state.runtime
    # From memory: re-read after a local swap at once, after one in another process within serving_refresh_s.
    served = runtime.directory.lookup(name)
    model = served.model
    require_active(model)
    ids = body.ids or [uuid.uuid4().hex for _ in body.instances]
    if len(ids) != len(body.instances):
        raise Invalid("ids and instances differ in length",
                      errors=[field_error("body.ids", f"{len(ids)} ids for {len(body.instances)} instances")])
    # The session connects only to record a refused batch (counted for schema_mismatch, as on /events).
    with Session(writer(state.engine)) as session:
        rows = checked_features(session, model, body.instances, "body.instances.{i}", check_rows)
    onnx = state.cache.get(state.engine, model.id, served.sha256, served.schema)
    started = time.perf_counter()
    predictions, proba = onnx.predict_rows(rows)
    latency = time.perf_counter() - started
    now = utcnow()
    per_row_ms = latency * 1000 / len(rows)
    scores = [dict(zip(onnx.classes, p, strict=True)) for p in proba.tolist()] if proba is not None else None
    events = [
        {"event_id": i, "ts": now, "features": r, "prediction": p, "latency_ms": per_row_ms, "version": served.label,
         "received_at": now, "scores": scores[k] if scores is not None else None}
        for k, (i, r, p) in enumerate(zip(ids, rows, predictions, strict=True))
    ]
    with audit.handed_over(request, len(events)) as entry:  # audited in the flush that stores the events
        runtime.writer.write(model, events, durable=log_mode(model, state.settings) == "durable", audit=entry)
    state.metrics.predictions.labels(model.name, served.role).inc(len(rows))
    state.metrics.prediction_latency.labels(model.name).observe(latency)
    return PredictResponse(model=model.name, role=served.role, version=served.label, latency_ms=latency * 1000,
                           predictions=[Prediction(id=i, prediction=p) for i, p in zip(ids, predictions, strict=True)])
