"""Predict through Watchtower: the active ONNX graph scores, and every prediction becomes an event."""

import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from pydantic_core import to_json
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from watchtower.auth import audit
from watchtower.auth.bearer import WriteAccess
from watchtower.clock import utcnow
from watchtower.db import writer
from watchtower.errors import Invalid, field_error, problem_responses
from watchtower.events.api import record_refusal
from watchtower.events.schemas import PredictRequest, PredictResponse
from watchtower.events.scored import Scored
from watchtower.events.validation import SchemaMismatch, check_columns
from watchtower.events.writer import log_mode
from watchtower.registry.archive import require_active
from watchtower.registry.models import MonitoredModel
from watchtower.registry.params import ModelName
from watchtower.serving.directory import Served
from watchtower.serving.ids import new_ids
from watchtower.serving.route import PredictRoute

if TYPE_CHECKING:  # onnxruntime loads with the first model, not at the app's start-up
    from watchtower.serving.onnx_model import OnnxModel

router = APIRouter(tags=["serving"], dependencies=WriteAccess, responses=problem_responses(401, 404, 409, 422, 503),
                   route_class=PredictRoute)


@router.post("/models/{name}/predict", response_model=PredictResponse)
async def predict(name: ModelName, body: PredictRequest, request: Request) -> Response:
    """Score rows with the model's active version (primary, or fallback after a swap) and record them: durable
    mode answers once they are stored, async mode at once (see "Prediction logging" in the README)."""
    state = request.app.state
    runtime = state.runtime
    # From memory: re-read after a local swap at once, after one in another process within serving_refresh_s.
    # A coroutine, so that a small batch costs no thread hop: only the database (a stale entry, a graph not yet
    # loaded, a refusal to record) and large batches go to the thread pool.
    served = runtime.directory.cached(name) or await run_in_threadpool(runtime.directory.lookup, name)
    model = served.model
    require_active(model)
    n = len(body.instances)
    if body.ids and len(body.ids) != n:
        raise Invalid("ids and instances differ in length",
                      errors=[field_error("body.ids", f"{len(body.ids)} ids for {n} instances")])
    onnx = (state.cache.loaded(model.id, served.sha256, served.schema)
            or await run_in_threadpool(state.cache.get, state.engine, model.id, served.sha256, served.schema))
    try:
        if n <= state.settings.serving_inline_rows:
            events, answer, latency = _score(body, model, served, onnx)
        else:
            events, answer, latency = await run_in_threadpool(_score, body, model, served, onnx)
    except SchemaMismatch as exc:
        await run_in_threadpool(_refuse, state.engine, model, exc)
        raise
    with audit.handed_over(request, len(events)) as entry:  # audited in the flush that stores the events
        await runtime.writer.write_async(model, events, durable=log_mode(model, state.settings) == "durable",
                                         audit=entry)
    state.metrics.predictions.labels(model.name, served.role).inc(n)
    state.metrics.prediction_latency.labels(model.name).observe(latency)
    return Response(answer, media_type="application/json")


def _score(body: PredictRequest, model: MonitoredModel, served: Served,
           onnx: "OnnxModel") -> tuple[Scored, bytes, float]:
    """Check the rows (whole columns, with numpy) and run the graph: the events (ids generated for a body
    without them), the encoded answer and the graph's run time (s)."""
    ids = body.ids or new_ids(len(body.instances))
    columns = check_columns(body.instances, model.features, "body.instances.{i}")
    started = time.perf_counter()
    predictions, proba = onnx.predict_columns(columns, len(ids))
    latency = time.perf_counter() - started
    events = Scored(ids, columns, predictions, onnx.classes, proba, latency * 1000 / len(ids), served.label,
                    utcnow())
    # Encoded here (PredictResponse's shape, as documented): FastAPI's response_model pass would validate and
    # encode the answer through jsonable_encoder, costing more than the model's run on a small batch.
    answer = to_json({"model": model.name, "role": served.role, "version": served.label,
                      "latency_ms": latency * 1000, "predictions": [
                          {"id": i, "prediction": p} for i, p in zip(ids, predictions, strict=True)]})
    return events, answer, latency


def _refuse(engine: Engine, model: MonitoredModel, refused: SchemaMismatch) -> None:
    """Record a refused batch (the database is only touched then)."""
    with Session(writer(engine)) as session:
        record_refusal(session, model, refused)
