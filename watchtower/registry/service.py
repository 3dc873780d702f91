"""Register models (validated end to end before anything is stored) and look them up."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from detectors import registry as detector_registry
from detectors.base import LABEL, PREDICTION, PROBA_PREFIX
from watchtower.auth.redact import redact_url
from watchtower.clock import utcnow
from watchtower.errors import Conflict, Invalid, NotFound, field_error
from watchtower.policy import holds
from watchtower.policy.store import effective_policy
from watchtower.registry.models import ModelVersion, Monitor, MonitoredModel, Pipeline, ReferenceData, Role
from watchtower.registry.schemas import (
    FeatureSpec,
    ModelRead,
    ModelSpec,
    MonitorRead,
    MonitorSpec,
    PipelineRead,
    VersionRead,
)
from watchtower.settings import Settings

if TYPE_CHECKING:  # pandas, numpy and onnxruntime are imported where models are registered, not at start-up
    import pandas as pd

    from watchtower.serving.cache import SessionCache
    from watchtower.serving.onnx_model import OnnxModel

TRIAL_ROWS = 50


def schema_of(model: MonitoredModel) -> dict[str, str]:
    """Feature name -> numeric|categorical, in schema order."""
    return {f["name"]: f["type"] for f in model.features}


def get_model(session: Session, name: str) -> MonitoredModel:
    """The model called `name`, or NotFound."""
    model = session.exec(select(MonitoredModel).where(MonitoredModel.name == name)).first()
    if model is None:
        raise NotFound(f"no model named '{name}'")
    return model


def get_pipeline(session: Session, name: str) -> Pipeline:
    """The pipeline called `name`, or NotFound."""
    pipeline = session.exec(select(Pipeline).where(Pipeline.name == name)).first()
    if pipeline is None:
        raise NotFound(f"no pipeline named '{name}'")
    return pipeline


def current_version(session: Session, model_id: int, role: str) -> ModelVersion:
    """The newest version of a role: the one that serves when that role is active."""
    version = session.exec(
        select(ModelVersion).options(defer(ModelVersion.onnx))  # type: ignore[arg-type]
        .where(ModelVersion.model_id == model_id, ModelVersion.role == role)
        .order_by(col(ModelVersion.version).desc())
    ).first()
    assert version is not None, "every model has a primary and a fallback version"
    return version


def register_model(
    session: Session, spec: ModelSpec, primary: bytes, fallback: bytes,
    reference: bytes, reference_name: str | None, settings: Settings, cache: SessionCache,
) -> MonitoredModel:
    """Check everything, then add the model, its versions, reference data and monitors (flushed, not committed)."""
    if session.exec(select(MonitoredModel.id).where(MonitoredModel.name == spec.name)).first() is not None:
        raise Conflict(f"a model named '{spec.name}' exists; upload a new version to it instead")
    schema: dict[str, str] = {f.name: f.type for f in spec.features}
    monitors = [_monitor_row(spec.task, f"spec.monitors.{i}", m, settings) for i, m in enumerate(spec.monitors)]
    models = load_pair(primary, fallback, schema, spec.task)
    frame = reference_frame(reference, reference_name, spec.features, spec.target)
    trial_run(models, frame)
    add_predictions(models[Role.primary], frame)

    pipeline_name = spec.pipeline.name or spec.name
    pipeline = session.exec(select(Pipeline).where(Pipeline.name == pipeline_name)).first()
    if pipeline is None:
        webhook = str(spec.pipeline.webhook_url) if spec.pipeline.webhook_url else None
        pipeline = Pipeline(name=pipeline_name, webhook_url=webhook)
        session.add(pipeline)
        session.flush()
    elif pipeline.paused:
        raise Conflict(f"pipeline '{pipeline.name}' is paused: resume it before registering models from it")
    assert pipeline.id is not None

    model = MonitoredModel(
        name=spec.name, task=spec.task, features=[f.model_dump() for f in spec.features],
        input_style=models[Role.primary].style, output_kind=models[Role.primary].output_kind,
        target=spec.target, pipeline_id=pipeline.id, log_mode=spec.log_mode,
    )
    session.add(model)
    session.flush()
    assert model.id is not None
    for role, data in ((Role.primary, primary), (Role.fallback, fallback)):
        add_version(session, model, role, 1, data, models[role], cache)
    add_reference(session, model.id, frame, schema)
    for monitor in monitors:
        monitor.model_id = model.id
        session.add(monitor)
    session.flush()
    return model


def current_reference(session: Session, model_id: int) -> ReferenceData:
    """The model's reference: the newest of its reference rows (older ones are history)."""
    reference = session.exec(select(ReferenceData).where(ReferenceData.model_id == model_id)
                             .order_by(col(ReferenceData.id).desc())).first()
    assert reference is not None, "every model has a reference"
    return reference


def add_reference(session: Session, model_id: int, frame: pd.DataFrame, schema: dict[str, str]) -> ReferenceData:
    """Store a reference frame with its profile, computed once so checks touch only the current window."""
    from detectors.profile import profile_reference
    from watchtower.events.segstore.binding import bound
    from watchtower.events.segstore.profiles import reference_sketch
    from watchtower.registry.tabular import to_parquet

    profile = profile_reference(frame, schema).to_bytes()  # type: ignore[arg-type]
    model = session.get(MonitoredModel, model_id)
    assert model is not None
    sketch = reference_sketch(model, frame, bound(session.get_bind()))  # mergeable: for windows' profiles
    reference = ReferenceData(model_id=model_id, n_rows=len(frame), parquet=to_parquet(frame), profile=profile,
                              sketch=sketch)
    session.add(reference)
    return reference


def model_read(session: Session, model: MonitoredModel) -> ModelRead:
    """The API view of a model."""
    assert model.id is not None
    versions = session.exec(select(ModelVersion).options(defer(ModelVersion.onnx))  # type: ignore[arg-type]
                            .where(ModelVersion.model_id == model.id)
                            .order_by(col(ModelVersion.role), col(ModelVersion.version))).all()
    monitors = session.exec(select(Monitor).where(Monitor.model_id == model.id).order_by(col(Monitor.id))).all()
    pipeline = session.get(Pipeline, model.pipeline_id)
    reference_rows = session.exec(select(ReferenceData.n_rows).where(ReferenceData.model_id == model.id)
                                  .order_by(col(ReferenceData.id).desc())).first() or 0
    active = current_version(session, model.id, model.active_role)
    return ModelRead(
        name=model.name, task=model.task, features=model.features, target=model.target,
        input_style=model.input_style, output_kind=model.output_kind,
        pipeline=pipeline.name if pipeline else "", active_role=model.active_role,
        active_version=version_label(active), swapped_at=model.swapped_at, reference_rows=reference_rows,
        versions=[VersionRead(role=v.role, version=v.version, sha256=v.sha256, features=v.features, target=v.target,
                              created_at=v.created_at) for v in versions],
        monitors=[MonitorRead(name=m.name, detectors=m.detectors, interval_s=m.interval_s, window_s=m.window_s,
                              window_events=m.window_events, min_events=m.min_events, mode=m.mode)
                  for m in monitors],
        policy=_policy_summary(session, model.id), created_at=model.created_at, archived_at=model.archived_at,
        archived_by=model.archived_by, archived_reason=model.archived_reason, log_mode=model.log_mode,
        holds=[holds.hold_read(h, None) for h, _ in holds.holds_of(session, model.id, utcnow(), active_only=True)],
    )


def _policy_summary(session: Session, model_id: int) -> dict[str, Any]:
    policy, scope = effective_policy(session, model_id)
    return {"scope": scope, "policy": policy.model_dump(mode="json")}


def pipeline_read(session: Session, pipeline: Pipeline) -> PipelineRead:
    """The API view of a pipeline (the webhook URL redacted: it may carry a secret)."""
    names = session.exec(select(MonitoredModel.name).where(MonitoredModel.pipeline_id == pipeline.id)).all()
    return PipelineRead(name=pipeline.name, paused=pipeline.paused, paused_at=pipeline.paused_at,
                        paused_reason=pipeline.paused_reason, webhook_url=redact_url(pipeline.webhook_url),
                        models=list(names))


def version_label(version: ModelVersion) -> str:
    """How a version is named in responses, events and metrics: `primary-v2`."""
    return f"{version.role}-v{version.version}"


def default_detectors(task: str) -> list[dict[str, Any]]:
    """Feature drift (native engine), prediction drift, missing values, schema mismatches (refused /predict and
    /events batches count: a feature lost upstream of a non-nullable field leaves no accepted events to drift) and,
    for classifiers, accuracy once labels arrive."""
    detectors: list[dict[str, Any]] = [{"name": "native_drift", "params": {}},
                                       {"name": "prediction_drift", "params": {}},
                                       {"name": "missing_values", "params": {}},
                                       {"name": "schema_mismatch", "params": {}}]
    if task == "classification":
        detectors.append({"name": "accuracy", "params": {}})
    return detectors


def put_monitor(session: Session, model: MonitoredModel, monitor: MonitorSpec, settings: Settings) -> Monitor:
    """Create or replace one monitor of a model (detectors, engine params, interval, window)."""
    assert model.id is not None
    row = _monitor_row(model.task, "body", monitor, settings)
    existing = session.exec(select(Monitor).where(Monitor.model_id == model.id, Monitor.name == monitor.name)).first()
    if existing is None:
        row.model_id = model.id
        session.add(row)
        session.flush()
        return row
    if (existing.window_events, existing.window_s) != (row.window_events, row.window_s):
        existing.cursor_ts = None  # a new window shape starts its blocks afresh
    existing.detectors, existing.interval_s = row.detectors, row.interval_s
    existing.window_s, existing.min_events = row.window_s, row.min_events
    existing.window_events, existing.mode = row.window_events, row.mode
    session.add(existing)
    session.flush()
    return existing


def _monitor_row(task: str, prefix: str, monitor: MonitorSpec, settings: Settings) -> Monitor:
    from detectors.thresholds import parse_spec

    detectors = ([d.model_dump(exclude_none=True) for d in monitor.detectors] if monitor.detectors
                 else default_detectors(task))
    errors = []
    for j, detector in enumerate(detectors):
        where = f"{prefix}.detectors.{j}"
        errors += detector_errors(detector["name"], detector["params"], f"{where}.name", f"{where}.params")
        try:
            parse_spec(detector.get("threshold"))
        except ValidationError as exc:
            errors += [field_error(f"{where}.threshold.{_threshold_field(e)}", e["msg"]) for e in exc.errors()]
    if monitor.window_s is not None and monitor.window_events is not None:
        both = "give either window_s (the last N seconds) or window_events (blocks of N events), not both"
        errors += [field_error(f"{prefix}.window_s", both), field_error(f"{prefix}.window_events", both)]
    learned = [d["name"] for d in detectors if d.get("threshold")]
    if len(learned) != len(set(learned)):
        errors.append(field_error(f"{prefix}.detectors", "a detector with a learned threshold may appear once"))
    if errors:
        raise Invalid("invalid monitor configuration; nothing was stored", errors=errors)
    return Monitor(
        model_id=0, name=monitor.name, detectors=detectors,
        interval_s=monitor.interval_s or settings.monitor_interval_s,
        window_s=monitor.window_s or settings.window_s, window_events=monitor.window_events,
        min_events=monitor.min_events or settings.min_window_events, mode=monitor.mode,
    )


def detector_errors(name: str, params: dict[str, Any], name_field: str, params_field: str) -> list[dict[str, str]]:
    """What is wrong with a detector spec, as field errors (an unknown name, or each bad param by its field)."""
    try:
        detector_registry.build(name, params)
    except KeyError:
        return [field_error(name_field, f"unknown detector; known: {detector_registry.names()}")]
    except ValidationError as exc:
        return [field_error(".".join([params_field, *map(str, e["loc"])]), e["msg"]) for e in exc.errors()]
    return []


def _threshold_field(error: Any) -> str:
    """The field a threshold error is about: its loc under the mode's tag, or the field its message names."""
    loc = [str(part) for part in error["loc"]]
    if len(loc) >= 2:
        return ".".join(loc[1:])
    named = str(error["msg"]).removeprefix("Value error, ").split(":", 1)[0]
    return named if loc and named.isidentifier() else "mode"


def load_checked(role: str, data: bytes, schema: dict[str, str]) -> OnnxModel:
    """Load a graph for `role`; a graph that does not fit the schema is a 422 naming the role."""
    from watchtower.serving.onnx_model import SignatureError, load

    try:
        return load(data, schema)
    except SignatureError as exc:
        raise Invalid(f"{role} model: {exc}", errors=[field_error(role, str(exc))]) from exc


def load_pair(primary: bytes, fallback: bytes, schema: dict[str, str], task: str) -> dict[str, OnnxModel]:
    from watchtower.serving.onnx_model import task_of

    models: dict[str, OnnxModel] = {Role.primary: load_checked(Role.primary, primary, schema),
                                    Role.fallback: load_checked(Role.fallback, fallback, schema)}
    p, f = models[Role.primary].output_kind, models[Role.fallback].output_kind
    if p != f:
        raise Invalid(f"the fallback outputs {f} but the primary outputs {p}",
                      errors=[field_error("fallback", f"output type {f} differs from the primary's {p}")])
    if task_of(p) != task:
        raise Invalid(f"a {task} model needs a {'label' if task == 'classification' else 'value'} output, got {p}",
                      errors=[field_error("spec.task", f"does not match the models' first output ({p})")])
    return models


def reference_frame(data: bytes, filename: str | None, features: list[FeatureSpec], target: str | None
                    ) -> pd.DataFrame:
    """The reference upload checked against a schema: its feature columns (typed) and the target as LABEL."""
    import pandas as pd

    from watchtower.registry.tabular import read_table

    try:
        frame = read_table(data, filename)
    except ValueError as exc:
        raise Invalid(f"reference: {exc}", errors=[field_error("reference", str(exc))]) from exc
    wanted = [f.name for f in features] + ([target] if target else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise Invalid(f"reference lacks columns {missing}",
                      errors=[field_error("reference", f"missing column '{c}'") for c in missing])
    if frame.empty:
        raise Invalid("reference has no rows", errors=[field_error("reference", "no rows")])
    frame = frame[wanted].copy()
    for feature in features:
        if feature.type == "numeric":
            if not pd.api.types.is_numeric_dtype(frame[feature.name]):
                raise Invalid(f"reference column '{feature.name}' is not numeric",
                              errors=[field_error("reference", f"column '{feature.name}' is not numeric")])
            frame[feature.name] = frame[feature.name].astype(float)
        else:
            frame[feature.name] = frame[feature.name].astype(str)
    if target:
        frame = frame.rename(columns={target: LABEL})
    return frame


def trial_run(models: dict[str, OnnxModel], frame: pd.DataFrame) -> None:
    sample = frame.head(TRIAL_ROWS)
    for role, model in models.items():
        try:
            model.predict(sample)
        except Exception as exc:  # onnxruntime errors name the offending node
            raise Invalid(f"{role} model failed on reference rows: {str(exc)[:300]}",
                          errors=[field_error(role, "fails to run on the reference data")]) from exc


def add_predictions(model: OnnxModel, frame: pd.DataFrame, chunk: int = 100_000) -> None:
    """PREDICTION, and PROBA_<class> columns when the model outputs probabilities, for every reference row."""
    import numpy as np

    parts = [model.predict_scores(frame.iloc[start:start + chunk]) for start in range(0, len(frame), chunk)]
    frame[PREDICTION] = [p for values, _ in parts for p in values]
    if parts and all(proba is not None for _, proba in parts):
        stacked = np.vstack([proba for _, proba in parts])  # type: ignore[misc]
        for k, label in enumerate(model.classes):
            frame[f"{PROBA_PREFIX}{label}"] = stacked[:, k]


def add_version(session: Session, model: MonitoredModel, role: str, number: int, data: bytes,
                loaded: OnnxModel, cache: SessionCache) -> ModelVersion:
    """Store one ONNX graph under the model's current schema, and keep it loaded."""
    assert model.id is not None
    version = ModelVersion(model_id=model.id, role=role, version=number, sha256=hashlib.sha256(data).hexdigest(),
                           onnx=data, features=model.features, target=model.target)
    session.add(version)
    session.flush()
    cache.put(model.id, version.sha256, loaded)
    return version
