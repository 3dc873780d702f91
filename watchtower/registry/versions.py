"""New versions from a model's pipeline: a new primary (and fallback), and optionally a new schema and reference.

A version that changes the schema brings reference data with the new columns; the previous reference is kept
as history, and the monitors are re-profiled: the new reference is profiled, learned thresholds are cleared
(the next pass re-fits them, from history scored after this point only) and count windows start after now.
"""

import io
from datetime import datetime

import pandas as pd
from sqlalchemy import delete
from sqlmodel import Session, col, func, select

from watchtower.checks.models import FittedThreshold
from watchtower.errors import Conflict, Invalid, field_error
from watchtower.registry.archive import require_active
from watchtower.registry.models import ModelVersion, Monitor, MonitoredModel, Pipeline, Role
from watchtower.registry.schemas import FeatureSpec, VersionSpec
from watchtower.registry.service import (
    add_predictions,
    add_reference,
    add_version,
    current_reference,
    current_version,
    load_checked,
    reference_frame,
    trial_run,
)
from watchtower.serving.cache import SessionCache
from watchtower.serving.onnx_model import OnnxModel, SignatureError, load


def add_versions(
    session: Session, model: MonitoredModel, primary: bytes, fallback: bytes | None, cache: SessionCache, *,
    now: datetime, spec: VersionSpec | None = None, reference: bytes | None = None,
    reference_name: str | None = None,
) -> list[ModelVersion]:
    """Check everything, then add the versions (and the new schema and reference); flushed, not committed."""
    assert model.id is not None
    require_active(model)
    _require_running_pipeline(session, model)
    features = [f.model_dump() for f in spec.features] if spec else model.features
    target = (spec.target if "target" in spec.model_fields_set else model.target) if spec else model.target
    changed = (features, target) != (model.features, model.target)
    if changed and reference is None:
        raise Invalid("a version that changes the schema needs reference data with the new columns; nothing "
                      "was stored", errors=[field_error("reference", "required with a new schema: upload the "
                                                        "reference (training) data as CSV or Parquet")])
    schema = {f["name"]: f["type"] for f in features}
    uploads: dict[str, bytes] = {Role.primary.value: primary}
    if fallback is not None:
        uploads[Role.fallback.value] = fallback
    loaded: dict[str, OnnxModel] = {role: _checked(role, data, schema, model.output_kind)
                                    for role, data in uploads.items()}
    if changed and fallback is None:  # the fallback that stays must take the new schema too
        loaded[Role.fallback.value] = _current_fallback(session, model, schema)
    frame = (reference_frame(reference, reference_name, [FeatureSpec(**f) for f in features], target)
             if reference is not None else pd.read_parquet(io.BytesIO(current_reference(session, model.id).parquet)))
    trial_run(loaded, frame)

    if reference is not None:
        add_predictions(loaded[Role.primary.value], frame)
        model.features, model.target = features, target
        session.add(model)
        add_reference(session, model.id, frame, schema)
        _reprofile(session, model.id, now)
    added = []
    for role, data in uploads.items():
        latest = session.exec(select(func.max(ModelVersion.version)).where(
            ModelVersion.model_id == model.id, ModelVersion.role == role)).one() or 0
        added.append(add_version(session, model, role, latest + 1, data, loaded[role], cache))
    return added


def _require_running_pipeline(session: Session, model: MonitoredModel) -> None:
    pipeline = session.get(Pipeline, model.pipeline_id)
    assert pipeline is not None
    if pipeline.paused:
        since = f" since {pipeline.paused_at:%Y-%m-%d %H:%M} UTC" if pipeline.paused_at else ""
        raise Conflict(f"pipeline '{pipeline.name}' is paused{since} ({pipeline.paused_reason or 'no reason given'}); "
                       "resume it before registering a new version")


def _checked(role: str, data: bytes, schema: dict[str, str], output_kind: str) -> OnnxModel:
    loaded = load_checked(role, data, schema)
    if loaded.output_kind != output_kind:
        raise Invalid(f"{role} outputs {loaded.output_kind}; this model's versions output {output_kind}",
                      errors=[field_error(role, "output type differs from the registered model")])
    return loaded


def _current_fallback(session: Session, model: MonitoredModel, schema: dict[str, str]) -> OnnxModel:
    assert model.id is not None
    version = current_version(session, model.id, Role.fallback)
    data = session.exec(select(ModelVersion.onnx).where(ModelVersion.id == version.id)).one()
    try:
        return load(data, schema)
    except SignatureError as exc:
        raise Invalid(f"the current fallback does not take the new schema: {exc}", errors=[field_error(
            "fallback", f"required with this schema, the current fallback does not take it: {exc}")]) from exc


def _reprofile(session: Session, model_id: int, now: datetime) -> None:
    """After a new reference: learned thresholds re-fit on the next pass, count windows start after now."""
    monitors = session.exec(select(Monitor).where(Monitor.model_id == model_id)).all()
    session.execute(delete(FittedThreshold).where(col(FittedThreshold.monitor_id).in_([m.id for m in monitors])))
    for monitor in monitors:
        monitor.reprofiled_at = now
        if monitor.window_events:
            monitor.cursor_ts, monitor.cursor_event_id = now, None
        session.add(monitor)
