"""Models and pipelines: register, upload versions, read, restore, resume, archive."""

import json
from typing import Annotated, TypeVar

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, ValidationError
from sqlmodel import col, select

from watchtower.actions.restore import restore_primary, resume_pipeline
from watchtower.auth.access import PrincipalDep
from watchtower.auth.bearer import WriteAccess
from watchtower.auth.principal import attributed
from watchtower.clock import utcnow
from watchtower.deps import SessionDep
from watchtower.errors import Invalid, field_error, multipart, problem_responses
from watchtower.limits import explain
from watchtower.registry.archive import archive, require_active, unarchive
from watchtower.registry.models import MonitoredModel, Pipeline
from watchtower.registry.params import ModelName, MonitorName, PipelineName
from watchtower.registry.schemas import (
    HoldingDecision,
    ModelPatch,
    ModelRead,
    ModelSpec,
    MonitorSpec,
    OperatorDecision,
    PipelineRead,
    VersionSpec,
)
from watchtower.registry.service import (
    get_model,
    get_pipeline,
    model_read,
    pipeline_read,
    put_monitor,
    register_model,
)
from watchtower.registry.tabular import read_upload

Spec = TypeVar("Spec", bound=BaseModel)

router = APIRouter(tags=["models"], responses=problem_responses(404))
SPEC_HELP = ('JSON: {"name", "task": classification|regression, "features": [{"name", "type": '
             'numeric|categorical, "nullable"}], "target", "pipeline": {"name", "webhook_url"}, "monitors": [...]}')
REGISTER_PARTS = {"spec": "the model spec as JSON (a form field)", "primary": "the primary ONNX file",
                  "fallback": "the fallback ONNX file", "reference": "the reference data, CSV or Parquet"}
VERSION_PARTS = {"primary": "the new primary ONNX file", "fallback": "optional: a new fallback ONNX file",
                 "spec": 'optional: {"features", "target"} as JSON, when the version changes the schema',
                 "reference": "optional (required with a changed schema): new reference data, CSV or Parquet"}


@router.post("/models", status_code=201, response_model=ModelRead,
             dependencies=[*WriteAccess, multipart(REGISTER_PARTS)],
             responses=problem_responses(401, 409, 413, 415, 422))
def register(
    request: Request, session: SessionDep,
    spec: Annotated[str, Form(description=SPEC_HELP)],
    primary: Annotated[UploadFile, File(description="Primary ONNX model")],
    fallback: Annotated[UploadFile, File(description="Fallback ONNX model, same inputs and output type")],
    reference: Annotated[UploadFile, File(description="Reference (training) data, CSV or Parquet")],
) -> ModelRead:
    """Register a model with its primary and fallback ONNX graphs and reference data; all checked, or nothing stored."""
    # A plain `def`: ONNX loading, trial runs and profiling run in the thread pool, never on the event loop.
    parsed = _parse(ModelSpec, spec)
    limit = request.app.state.settings.max_upload_bytes
    files = {name: read_upload(upload, name, limit)
             for name, upload in (("primary", primary), ("fallback", fallback), ("reference", reference))}
    state = request.app.state
    model = register_model(session, parsed, files["primary"], files["fallback"], files["reference"],
                           reference.filename, state.settings, state.cache)
    session.commit()
    if state.scheduler is not None:
        state.scheduler.sync_jobs()
    return model_read(session, model)


@router.post("/models/{name}/versions", status_code=201, response_model=ModelRead,
             dependencies=[*WriteAccess, multipart(VERSION_PARTS)],
             responses=problem_responses(401, 409, 413, 415, 422))
def upload_version(
    name: ModelName, request: Request, session: SessionDep,
    primary: Annotated[UploadFile, File(description="New primary ONNX model")],
    fallback: Annotated[UploadFile | None, File(description="Optional new fallback")] = None,
    spec: Annotated[str | None, Form(description='Optional JSON {"features": [...], "target"}: the schema this '
                                     "version takes; a changed schema needs `reference`")] = None,
    reference: Annotated[UploadFile | None, File(description="Reference data (CSV or Parquet) for this version; "
                                                 "required with a changed schema")] = None,
) -> ModelRead:
    """A new version from the model's pipeline, optionally with a new schema and reference (the old reference
    is kept; monitors are re-profiled); 409 while the pipeline is paused or the model is archived."""
    from watchtower.registry.versions import add_versions  # onnxruntime and pandas: not at start-up

    model = get_model(session, name)
    limit = request.app.state.settings.max_upload_bytes
    parsed = _parse(VersionSpec, spec) if spec is not None else None
    new_fallback = read_upload(fallback, "fallback", limit) if fallback is not None else None
    new_reference = read_upload(reference, "reference", limit) if reference is not None else None
    add_versions(session, model, read_upload(primary, "primary", limit), new_fallback, request.app.state.cache,
                 now=utcnow(), spec=parsed, reference=new_reference,
                 reference_name=reference.filename if reference is not None else None)
    session.commit()
    return model_read(session, model)


@router.get("/models", response_model=list[ModelRead])
def list_models(session: SessionDep) -> list[ModelRead]:
    """Every registered model."""
    return [model_read(session, m) for m in session.exec(select(MonitoredModel).order_by(col(MonitoredModel.id)))]


@router.get("/models/{name}", response_model=ModelRead)
def read_model(name: ModelName, session: SessionDep) -> ModelRead:
    """One model: schema, versions, which role serves, monitors."""
    return model_read(session, get_model(session, name))


@router.patch("/models/{name}", response_model=ModelRead, dependencies=WriteAccess,
              responses=problem_responses(401, 422))
def patch_model(name: ModelName, body: ModelPatch, session: SessionDep) -> ModelRead:
    """Change a model's settings; fields left out keep their value (`log_mode: null` follows
    WATCHTOWER_LOG_MODE again)."""
    model = get_model(session, name)
    if "log_mode" in body.model_fields_set:
        model.log_mode = body.log_mode
    session.add(model)
    session.commit()
    return model_read(session, model)


@router.post("/models/{name}/restore", response_model=ModelRead, dependencies=WriteAccess,
             responses=problem_responses(401, 409, 422))
def restore(name: ModelName, body: HoldingDecision, session: SessionDep, principal: PrincipalDep) -> ModelRead:
    """Serve the primary again: an explicit decision, recorded with who and why; automatic swaps of the model
    are held until its incident is resolved, until `hold_until`, or until re-armed."""
    body = attributed(body, principal)
    model = get_model(session, name)
    restore_primary(session, model, body.author, body.reason, body.hold_until)
    session.commit()
    return model_read(session, model)


@router.post("/models/{name}/archive", response_model=ModelRead, dependencies=WriteAccess,
             responses=problem_responses(401, 409, 422))
def archive_model(name: ModelName, body: OperatorDecision, request: Request, session: SessionDep,
                  principal: PrincipalDep) -> ModelRead:
    """Stop serving and monitoring a model (predict and ingest answer 409); its incidents, checks and versions
    stay readable and its name stays taken. Recorded with who and why."""
    body = attributed(body, principal)
    model = get_model(session, name)
    archive(model, body.author, body.reason, utcnow())
    session.add(model)
    session.commit()
    if request.app.state.scheduler is not None:
        request.app.state.scheduler.sync_jobs()
    return model_read(session, model)


@router.post("/models/{name}/unarchive", response_model=ModelRead, dependencies=WriteAccess,
             responses=problem_responses(401, 409, 422))
def unarchive_model(name: ModelName, body: OperatorDecision, request: Request, session: SessionDep,
                    principal: PrincipalDep) -> ModelRead:
    """Serve and monitor an archived model again."""
    body = attributed(body, principal)
    model = get_model(session, name)
    unarchive(model, body.author, body.reason)
    session.add(model)
    session.commit()
    if request.app.state.scheduler is not None:
        request.app.state.scheduler.sync_jobs()
    return model_read(session, model)


@router.put("/models/{name}/monitors/{monitor}", response_model=ModelRead, dependencies=WriteAccess,
            responses=problem_responses(401, 409, 422))
def set_monitor(name: ModelName, monitor: MonitorName, body: MonitorSpec, request: Request,
                session: SessionDep) -> ModelRead:
    """Create or replace a monitor: which detectors (engines) run, with which params, how often, on what window."""
    if "name" in body.model_fields_set and body.name != monitor:
        raise Invalid(f"the body names monitor '{body.name}' but the path names '{monitor}'",
                      errors=[field_error("body.name", f"must equal the path's monitor name '{monitor}' "
                                          "(or be left out); to rename a monitor, PUT it under the new name")])
    model = get_model(session, name)
    require_active(model)
    put_monitor(session, model, body.model_copy(update={"name": monitor}), request.app.state.settings)
    session.commit()
    if request.app.state.scheduler is not None:
        request.app.state.scheduler.sync_jobs()
    return model_read(session, model)


@router.get("/pipelines", response_model=list[PipelineRead], tags=["pipelines"])
def list_pipelines(session: SessionDep) -> list[PipelineRead]:
    """Every pipeline and whether it is paused."""
    return [pipeline_read(session, p) for p in session.exec(select(Pipeline).order_by(col(Pipeline.id)))]


@router.get("/pipelines/{name}", response_model=PipelineRead, tags=["pipelines"])
def read_pipeline(name: PipelineName, session: SessionDep) -> PipelineRead:
    """Polled by a pipeline before each run: do not run while `paused` is true."""
    return pipeline_read(session, get_pipeline(session, name))


@router.post("/pipelines/{name}/resume", response_model=PipelineRead, tags=["pipelines"],
             dependencies=WriteAccess, responses=problem_responses(401, 409, 422))
def resume(name: PipelineName, body: HoldingDecision, session: SessionDep, principal: PrincipalDep) -> PipelineRead:
    """Unpause a pipeline: an explicit decision, recorded with who and why; automatic pauses for its models are
    held until their incident is resolved, until `hold_until`, or until re-armed."""
    body = attributed(body, principal)
    pipeline = get_pipeline(session, name)
    resume_pipeline(session, pipeline, body.author, body.reason, body.hold_until)
    session.commit()
    return pipeline_read(session, pipeline)


def _parse(schema: type[Spec], raw: str) -> Spec:
    """The JSON `spec` form part as `schema`; errors name `spec.<field>`."""
    try:
        return schema.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise Invalid(f"spec is not JSON: {exc}", errors=[field_error("spec", f"not JSON: {exc}")]) from exc
    except ValidationError as exc:
        errors = [field_error(".".join(["spec", *map(str, e["loc"])]), explain(e)) for e in exc.errors()]
        raise Invalid("invalid spec; nothing was stored", errors=errors) from exc
