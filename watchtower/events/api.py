"""Serving events in: batch ingest (JSON or file) and labels. A 2xx means committed."""

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, File, Request, UploadFile

from watchtower.auth import WriteAccess
from watchtower.clock import to_utc, utcnow
from watchtower.db import SessionDep
from watchtower.errors import Invalid, PayloadTooLarge, field_error, problem_responses
from watchtower.events.schemas import EventBatch, IngestResult, LabelBatch
from watchtower.events.store import insert_events, insert_labels
from watchtower.events.validation import check_rows
from watchtower.registry.service import get_model
from watchtower.registry.tabular import read_table

router = APIRouter(prefix="/models/{name}", tags=["events"], dependencies=WriteAccess,
                   responses=problem_responses(401, 404, 422))
RESERVED = ("id", "ts", "prediction", "latency_ms", "version")


@router.post("/events", response_model=IngestResult)
def ingest_events(name: str, body: EventBatch, session: SessionDep, request: Request) -> IngestResult:
    """Store serving events reported by a model served elsewhere; resent ids are ignored."""
    model = get_model(session, name)
    features = check_rows([e.features for e in body.events], model.features, "body.events.*.features")
    now = utcnow()
    rows = [
        {"model_id": model.id, "event_id": e.id, "ts": to_utc(e.ts) if e.ts else now, "features": f,
         "prediction": e.prediction, "latency_ms": e.latency_ms, "version": e.version, "received_at": now}
        for e, f in zip(body.events, features, strict=True)
    ]
    accepted = insert_events(session, rows)
    session.commit()
    request.app.state.metrics.events_ingested.labels(model.name).inc(accepted)
    return IngestResult(accepted=accepted, duplicates=len(rows) - accepted)


@router.post("/events/upload", response_model=IngestResult, responses=problem_responses(413))
async def upload_events(name: str, file: Annotated[UploadFile, File(description="CSV or Parquet: id, "
                        "features..., optional ts, prediction, latency_ms, version")],
                        session: SessionDep, request: Request) -> IngestResult:
    """Store serving events from a CSV or Parquet file, validated whole before anything is written."""
    model = get_model(session, name)
    data = await _read_limited(file, request.app.state.settings.max_upload_bytes)
    try:
        frame = read_table(data, file.filename)
    except ValueError as exc:
        raise Invalid(str(exc), errors=[field_error("file", str(exc))]) from exc
    if "id" not in frame.columns:
        raise Invalid("the file has no 'id' column", errors=[field_error("file", "missing column 'id'")])
    if frame.empty:
        raise Invalid("the file has no rows", errors=[field_error("file", "no rows")])
    records: list[dict[str, Any]] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    feature_rows = [{k: v for k, v in r.items() if k not in RESERVED} for r in records]
    features = check_rows(feature_rows, model.features, "file.rows")
    now = utcnow()
    rows = [
        {"model_id": model.id, "event_id": str(r["id"]), "features": f, "prediction": r.get("prediction"),
         "ts": to_utc(pd.Timestamp(r["ts"]).to_pydatetime()) if r.get("ts") is not None else now,
         "latency_ms": r.get("latency_ms"), "version": r.get("version"), "received_at": now}
        for r, f in zip(records, features, strict=True)
    ]
    accepted = insert_events(session, rows)
    session.commit()
    request.app.state.metrics.events_ingested.labels(model.name).inc(accepted)
    return IngestResult(accepted=accepted, duplicates=len(rows) - accepted)


@router.post("/labels", response_model=IngestResult)
def ingest_labels(name: str, body: LabelBatch, session: SessionDep) -> IngestResult:
    """Attach ground truth to prediction ids (it may arrive long after the prediction)."""
    model = get_model(session, name)
    errors = [field_error(f"body.labels.{i}.label", "must not be null")
              for i, item in enumerate(body.labels) if item.label is None]
    if errors:
        raise Invalid("labels must not be null; nothing was stored", errors=errors)
    now = utcnow()
    rows = [{"model_id": model.id, "event_id": item.id, "label": item.label, "received_at": now}
            for item in body.labels]
    accepted = insert_labels(session, rows)
    session.commit()
    return IngestResult(accepted=accepted, duplicates=len(rows) - accepted)


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"upload exceeds {limit} bytes (WATCHTOWER_MAX_UPLOAD_BYTES)")
    return data
