"""Pause the model's training/ingestion pipeline so bad data stops flowing into the next model."""

from sqlmodel import Session

from alerts.outbox import enqueue
from watchtower.actions.base import ActionContext
from watchtower.clock import utcnow
from watchtower.registry.models import MonitoredModel, Pipeline


class PausePipeline:
    """Set the pipeline's paused flag (pipelines poll it) and queue its webhook, if it has one."""

    name = "pause_pipeline"

    def execute(self, ctx: ActionContext, session: Session) -> str:
        model = session.get(MonitoredModel, ctx.breach.model_id)
        assert model is not None
        pipeline = session.get(Pipeline, model.pipeline_id)
        assert pipeline is not None
        if pipeline.paused:
            return f"pipeline '{pipeline.name}' was already paused"
        reason = f"monitor '{ctx.breach.monitor_name}' of model '{model.name}' breached"
        pipeline.paused, pipeline.paused_at, pipeline.paused_reason = True, utcnow(), reason
        pipeline.updated_at = pipeline.paused_at
        session.add(pipeline)
        if pipeline.webhook_url:
            enqueue(session, "webhook", {"url": pipeline.webhook_url, "body": {
                "event": "pipeline.paused", "pipeline": pipeline.name, "model": model.name,
                "reason": reason, "paused_at": pipeline.paused_at.isoformat()}})
            return f"paused pipeline '{pipeline.name}'; webhook queued"
        return f"paused pipeline '{pipeline.name}'"
