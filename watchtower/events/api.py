"""Serving events in: batch ingest (JSON or file) and labels. A 2xx means committed."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session

from watchtower.auth import audit
from watchtower.auth.bearer import WriteAccess
from watchtower.clock import to_utc, utcnow
from watchtower.deps import SessionDep
from watchtower.errors import Invalid, field_error, multipart, problem_responses
from watchtower.events.batch import documented_body, parse_events, raw_body
from watchtower.events.models import IngestRejection, MetricPoint
from watchtower.events.schemas import (
    STAGE_PATTERN,
    EventIn,
    FeatureLogBatch,
    IngestResult,
    LabelBatch,
    LabelResult,
    MetricBatch,
)
from watchtower.events.validation import MAX_REPORTED, SchemaMismatch, check_columns, check_rows
from watchtower.limits import explain
from watchtower.registry.archive import require_active
from watchtower.registry.models import MonitoredModel
from watchtower.registry.params import ModelName
from watchtower.registry.service import get_model

if TYPE_CHECKING:  # the frame builders and the store (pandas, pyarrow) load with the first batch, not the app
    import pyarrow as pa

router = APIRouter(prefix="/models/{name}", tags=["events"], dependencies=WriteAccess,
                   responses=problem_responses(401, 404, 409, 422))
RESERVED = ("id", "ts", "prediction", "latency_ms", "error", "version")
_EVENTS = TypeAdapter(list[EventIn])
T = TypeVar("T")


def active_model(session: Session, name: str) -> MonitoredModel:
    """The model, or 404; 409 when it is archived (an archived model takes no new data)."""
    model = get_model(session, name)
    require_active(model)
    return model


def checked_features(session: Session, model: MonitoredModel, rows: list[dict[str, Any]], where: str,
                     check: Callable[[list[dict[str, Any]], list[dict[str, Any]], str], T]) -> T:
    """check_rows or check_columns, and on a schema mismatch record what was refused (for the schema_mismatch
    detector)."""
    try:
        return check(rows, model.features, where)
    except SchemaMismatch as exc:
        record_refusal(session, model, exc)
        raise


def record_refusal(session: Session, model: MonitoredModel, refused: SchemaMismatch) -> None:
    """Count a refused batch's problems (the schema_mismatch detector reads them); the events are not stored."""
    now = utcnow()
    session.add_all([IngestRejection(model_id=cast(int, model.id), ts=now, kind=kind, feature=_column_safe(feature),
                                     count=n) for (kind, feature), n in refused.counts.items()])
    session.commit()


def served_model(request: Request, name: str) -> MonitoredModel:
    """The model as the serving directory holds it (no database round trip); 404, or 409 when archived."""
    model = request.app.state.runtime.directory.lookup(name).model
    require_active(model)
    return cast(MonitoredModel, model)


def store_durably(request: Request, model: MonitoredModel, frame: "pa.Table") -> int:
    """Hand the checked batch (an event_table) to the event writer and wait for its commit (shared with
    concurrent requests); return how many were new. A 2xx still means committed."""
    with audit.handed_over(request, len(frame)) as entry:  # audited in the flush that stores the events
        accepted = request.app.state.runtime.writer.write(model, frame, durable=True, audit=entry)
    request.app.state.metrics.events_ingested.labels(model.name).inc(accepted)
    return cast(int, accepted)


@router.post("/events", response_model=IngestResult, openapi_extra=documented_body(),
             responses=problem_responses(503))
def ingest_events(name: ModelName, body: Annotated[tuple[bytes, str | None], Depends(raw_body)],
                  session: SessionDep, request: Request) -> IngestResult:
    """Store serving events reported by a model served elsewhere; resent ids are ignored. The body is an
    EventBatch: `{"events": [{"id", "ts", "features", "prediction", "scores", "latency_ms", "error",
    "version"}, ...]}`."""
    from watchtower.events.columns import event_columns, read_events
    from watchtower.events.frames import event_table, utc_array

    # The common batch goes from bytes to Arrow columns in C++; any other is parsed and checked as an EventBatch,
    # before the model lookup, as a validated body parameter would be.
    columns = read_events(*body)
    events = parse_events(body) if columns is None else None
    model = served_model(request, name)
    now = utcnow()
    frame = None if columns is None else event_columns(columns, model.features, model.task, now)
    if frame is None:  # the features are checked (and a refusal recorded) the usual way
        if events is None:
            events = parse_events(body)
        features = checked_features(session, model, [e["features"] for e in events], "body.events.{i}.features",
                                    check_columns)
        frame = event_table([e["id"] for e in events], utc_array([e.get("ts") for e in events], default=now),
                            features, [e.get("prediction") for e in events], model.task,
                            latency=[e.get("latency_ms") for e in events], errors=[e.get("error") for e in events],
                            scores=[e.get("scores") for e in events], versions=[e.get("version") for e in events],
                            received_at=now)
    accepted = store_durably(request, model, frame)
    return IngestResult(accepted=accepted, duplicates=len(frame) - accepted)


@router.post("/events/upload", response_model=IngestResult, responses=problem_responses(413, 415, 503),
             dependencies=[multipart({"file": "the events as CSV or Parquet"})])
def upload_events(name: ModelName, file: Annotated[UploadFile, File(description="CSV or Parquet: id, "
                  "features..., optional ts, prediction, latency_ms, error, version")],
                  session: SessionDep, request: Request) -> IngestResult:
    """Store serving events from a CSV or Parquet file, validated whole before anything is written."""
    # A plain `def`: parsing and checking a big file runs in the thread pool, never on the event loop.
    from watchtower.events.frames import event_table, utc_array
    from watchtower.registry.tabular import read_table, read_upload  # pyarrow's CSV and Parquet readers

    model = served_model(request, name)
    data = read_upload(file, "file", request.app.state.settings.max_upload_bytes)
    try:
        frame = read_table(data, file.filename)
    except ValueError as exc:
        raise Invalid(str(exc), errors=[field_error("file", str(exc))]) from exc
    if "id" not in frame.columns:
        raise Invalid("the file has no 'id' column", errors=[field_error("file", "missing column 'id'")])
    if frame.empty:
        raise Invalid("the file has no rows", errors=[field_error("file", "no rows")])
    records: list[dict[str, Any]] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    events = _file_events(records)
    feature_rows = [{k: v for k, v in r.items() if k not in RESERVED} for r in records]
    features = checked_features(session, model, feature_rows, "file.rows.{i}", check_columns)
    now = utcnow()
    frame = event_table([e.id for e in events], utc_array([e.ts for e in events], default=now), features,
                        [e.prediction for e in events], model.task, latency=[e.latency_ms for e in events],
                        errors=[e.error for e in events], versions=[e.version for e in events], received_at=now)
    accepted = store_durably(request, model, frame)
    return IngestResult(accepted=accepted, duplicates=len(frame) - accepted)



def _column_safe(feature: str) -> str:
    """An unknown feature's name as the rejection's VARCHAR(200) column can hold it, whatever the client sent."""
    clean = feature.replace("\x00", "\ufffd").encode(errors="replace").decode()
    return clean[:200]


def _file_events(records: list[dict[str, Any]]) -> list[EventIn]:
    """The file's reserved columns checked as JSON events are (id length, ts range, finite latency...)."""
    raw = [{"id": str(r["id"]), "features": {}} | {k: _plain(r[k], k) for k in RESERVED[1:] if r.get(k) is not None}
           for r in records]
    try:
        return _EVENTS.validate_python(raw)
    except ValidationError as exc:
        errors = [field_error(".".join(["file.rows", *map(str, e["loc"])]), explain(e)) for e in exc.errors()]
        raise Invalid(f"{len(errors)} invalid value(s); nothing was stored", errors=errors[:MAX_REPORTED]) from exc


def _plain(value: Any, column: str) -> Any:
    """numpy and pandas scalars as the Python values JSON would have given; text columns as text even when a
    CSV reader saw numbers in them (version 2, error code 500)."""
    if column in ("error", "version"):
        return str(value)
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


@router.post("/labels", response_model=LabelResult)
def ingest_labels(
    name: ModelName, body: LabelBatch, session: SessionDep,
    allow_unserved: Annotated[bool, Query(description=(
        "Keep labels whose prediction id has no event yet (pipelines where ground truth can arrive first); "
        "they join their events when these arrive. Default: such a batch is a 422 naming each unknown id."
    ))] = False,
) -> LabelResult:
    """Attach ground truth to prediction ids (it may arrive long after the prediction); every id must name an
    event of this model unless `allow_unserved=true`."""
    from watchtower.events.store import insert_labels, served_ids


    model = active_model(session, name)
    assert model.id is not None
    errors = [field_error(f"body.labels.{i}.label", "must not be null")
              for i, item in enumerate(body.labels) if item.label is None]
    if errors:
        raise Invalid("labels must not be null; nothing was stored", errors=errors)
    served = served_ids(session, model.id, [item.id for item in body.labels])
    unserved = [(i, item.id) for i, item in enumerate(body.labels) if item.id not in served]
    if unserved and not allow_unserved:
        reason = (f"no event of model '{model.name}' has this id; send the prediction (POST /models/{model.name}/"
                  "events or /predict) first, or add ?allow_unserved=true to keep labels that arrive before "
                  "their events")
        raise Invalid(f"{len(unserved)} of {len(body.labels)} labels name prediction ids never served by "
                      f"'{model.name}' (first: {unserved[0][1]!r}); nothing was stored",
                      errors=[field_error(f"body.labels.{i}.id", reason) for i, _ in unserved[:MAX_REPORTED]])
    now = utcnow()
    rows = [{"model_id": model.id, "event_id": item.id, "label": item.label, "received_at": now}
            for item in body.labels]
    accepted = insert_labels(session, rows)
    session.commit()
    return LabelResult(accepted=accepted, duplicates=len(rows) - accepted, unserved=len({i for _, i in unserved}))


@router.post("/stages/{stage}/features", response_model=IngestResult)
def log_stage_features(name: ModelName, stage: Annotated[str, Path(pattern=STAGE_PATTERN, max_length=100)],
                       body: FeatureLogBatch, session: SessionDep) -> IngestResult:
    """Log feature values per entity id as a pipeline stage produced them (e.g. `training`: as generated for
    training). Skew checks join them with what serving received under the same ids; a resent id replaces
    its values."""
    from watchtower.events.store import upsert_feature_logs


    model = active_model(session, name)
    if stage == "serving":
        raise Invalid("'serving' is what the events carry; log other stages",
                      errors=[field_error("path.stage", "'serving' is reserved")])
    features = checked_features(session, model, [r.features for r in body.rows], "body.rows.{i}.features",
                                check_rows)
    now = utcnow()
    rows = [{"model_id": model.id, "stage": stage, "entity_id": r.id, "features": f, "logged_at": now}
            for r, f in zip(body.rows, features, strict=True)]
    written = upsert_feature_logs(session, rows)
    session.commit()
    return IngestResult(accepted=written, duplicates=len(rows) - written)


@router.post("/metrics", response_model=IngestResult)
def push_metrics(name: ModelName, body: MetricBatch, session: SessionDep) -> IngestResult:
    """Push business KPI values (click-through, conversion...) for the model; `business_kpi` checks them."""
    model = active_model(session, name)
    now = utcnow()
    session.add_all([MetricPoint(model_id=cast(int, model.id), name=p.name, value=p.value,
                                 ts=to_utc(p.ts) if p.ts else now) for p in body.points])
    session.commit()
    return IngestResult(accepted=len(body.points), duplicates=0)
