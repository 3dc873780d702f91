"""Swap serving to the fallback ONNX model."""

from sqlmodel import Session

from watchtower.actions.base import ActionContext
from watchtower.clock import utcnow
from watchtower.registry.models import MonitoredModel, Role
from watchtower.registry.service import current_version, schema_of, version_label


class SwapToFallback:
    """Make the fallback the active role; predict reads the role per request, so the next call uses it."""

    name = "swap_model"

    def execute(self, ctx: ActionContext, session: Session) -> str:
        model = session.get(MonitoredModel, ctx.breach.model_id)
        assert model is not None and model.id is not None
        fallback = current_version(session, model.id, Role.fallback)
        label = version_label(fallback)
        if model.active_role == Role.fallback:
            return f"already serving {label}"
        # Load the fallback before switching, so no request pays for (or fails on) the load.
        ctx.runtime.cache.get(ctx.runtime.engine, model.id, fallback.sha256, schema_of(model))
        model.active_role, model.swapped_at = Role.fallback.value, utcnow()
        session.add(model)
        return f"serving switched to {label}"
