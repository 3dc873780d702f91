"""Archive a model (no serving, no monitoring; incidents and history stay readable) and bring it back."""

import logging
from datetime import datetime

from watchtower.errors import Conflict
from watchtower.registry.models import MonitoredModel

log = logging.getLogger(__name__)


def archived_since(model: MonitoredModel) -> str:
    """`since 2026-11-28 09:00 UTC by ana (replaced by churn-v2)`, for refusals and logs."""
    assert model.archived_at is not None
    return f"since {model.archived_at:%Y-%m-%d %H:%M} UTC by {model.archived_by} ({model.archived_reason})"


def require_active(model: MonitoredModel) -> None:
    """Refuse (409) what an archived model no longer does: serve, take events, versions or monitors."""
    if model.archived_at is not None:
        raise Conflict(f"model '{model.name}' is archived {archived_since(model)}; its incidents and history "
                       f"stay readable. To serve and monitor it again: POST /models/{model.name}/unarchive "
                       'with {"author", "reason"}')


def archive(model: MonitoredModel, author: str, reason: str, now: datetime) -> None:
    """Stop serving and monitoring the model; 409 if it is archived already."""
    if model.archived_at is not None:
        raise Conflict(f"model '{model.name}' is already archived {archived_since(model)}")
    model.archived_at, model.archived_by, model.archived_reason = now, author, reason
    log.info("model %s archived by %s: %s", model.name, author, reason)


def unarchive(model: MonitoredModel, author: str, reason: str) -> None:
    """Serve and monitor the model again; 409 if it is not archived."""
    if model.archived_at is None:
        raise Conflict(f"model '{model.name}' is not archived")
    log.info("model %s unarchived by %s (%s); it was archived %s", model.name, author, reason, archived_since(model))
    model.archived_at, model.archived_by, model.archived_reason = None, None, None
