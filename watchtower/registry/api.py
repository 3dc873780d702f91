"""Models and pipelines: register, upload versions, read, restore, resume."""

import json
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from sqlmodel import col, select

from watchtower.actions.restore import restore_primary, resume_pipeline
from watchtower.auth import WriteAccess
from watchtower.db import SessionDep
from watchtower.errors import Invalid, field_error, problem_responses
from watchtower.limits import explain
from watchtower.registry.models import MonitoredModel, Pipeline
from watchtower.registry.schemas import (
    ModelName,
    ModelRead,
    ModelSpec,
    MonitorName,
    MonitorSpec,
    OperatorDecision,
    PipelineName,
    PipelineRead,
)
from watchtower.registry.service import (
    add_versions,
    get_model,
    get_pipeline,
    model_read,
    pipeline_read,
    put_monitor,
    register_model,
)
from watchtower.registry.tabular import read_upload

router = APIRouter(tags=["models"], responses=problem_responses(404))
SPEC_HELP = ('JSON: {"name", "task": classification|regression, "features": [{"name", "type": '
             'numeric|categorical, "nullable"}], "target", "pipeline": {"name", "webhook_url"}, "monitors": [...]}')


@router.post("/models", status_code=201, response_model=ModelRead, dependencies=WriteAccess,
             responses=problem_responses(401, 409, 413, 422))
def register(
    request: Request, session: SessionDep,
    spec: Annotated[str, Form(description=SPEC_HELP)],
    primary: Annotated[UploadFile, File(description="Primary ONNX model")],
    fallback: Annotated[UploadFile, File(description="Fallback ONNX model, same inputs and output type")],
    reference: Annotated[UploadFile, File(description="Reference (training) data, CSV or Parquet")],
) -> ModelRead:
    """Register a model with its primary and fallback ONNX graphs and reference data; all checked, or nothing stored."""
    # A plain `def`: ONNX loading, trial runs and profiling run in the thread pool, never on the event loop.
    parsed = _parse_spec(spec)
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


@router.post("/models/{name}/versions", status_code=201, response_model=ModelRead, dependencies=WriteAccess,
             responses=problem_responses(401, 409, 413, 422))
def upload_version(
    name: ModelName, request: Request, session: SessionDep,
    primary: Annotated[UploadFile, File(description="New primary ONNX model")],
    fallback: Annotated[UploadFile | None, File(description="Optional new fallback")] = None,
) -> ModelRead:
    """A new version from the model's pipeline; 409 while the pipeline is paused."""
    model = get_model(session, name)
    limit = request.app.state.settings.max_upload_bytes
    new_fallback = read_upload(fallback, "fallback", limit) if fallback is not None else None
    add_versions(session, model, read_upload(primary, "primary", limit), new_fallback, request.app.state.cache)
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


@router.post("/models/{name}/restore", response_model=ModelRead, dependencies=WriteAccess,
             responses=problem_responses(401, 409, 422))
def restore(name: ModelName, body: OperatorDecision, session: SessionDep) -> ModelRead:
    """Serve the primary again: an explicit decision, recorded with who and why."""
    model = get_model(session, name)
    restore_primary(session, model, body.author, body.reason)
    session.commit()
    return model_read(session, model)


@router.put("/models/{name}/monitors/{monitor}", response_model=ModelRead, dependencies=WriteAccess,
            responses=problem_responses(401, 422))
def set_monitor(name: ModelName, monitor: MonitorName, body: MonitorSpec, request: Request,
                session: SessionDep) -> ModelRead:
    """Create or replace a monitor: which detectors (engines) run, with which params, how often, on what window."""
    model = get_model(session, name)
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
def resume(name: PipelineName, body: OperatorDecision, session: SessionDep) -> PipelineRead:
    """Unpause a pipeline: an explicit decision, recorded with who and why."""
    pipeline = get_pipeline(session, name)
    resume_pipeline(session, pipeline, body.author, body.reason)
    session.commit()
    return pipeline_read(session, pipeline)


def _parse_spec(raw: str) -> ModelSpec:
    try:
        return ModelSpec.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise Invalid(f"spec is not JSON: {exc}", errors=[field_error("spec", f"not JSON: {exc}")]) from exc
    except ValidationError as exc:
        errors = [field_error(".".join(["spec", *map(str, e["loc"])]), explain(e)) for e in exc.errors()]
        raise Invalid("invalid model spec; nothing was stored", errors=errors) from exc
