"""Imports every table so SQLModel.metadata (create_all, Alembic) sees them all."""

from alerts.outbox import OutboxMessage
from postmortems.models import Incident, IncidentTag, TimelineEntry
from watchtower.actions.models import ActionRun
from watchtower.checks.models import CheckResult, CheckRun
from watchtower.events.models import Label, ServingEvent
from watchtower.registry.models import ModelVersion, Monitor, MonitoredModel, Pipeline, ReferenceData

__all__ = [
    "ActionRun", "CheckResult", "CheckRun", "Incident", "IncidentTag", "Label", "ModelVersion", "Monitor",
    "MonitoredModel", "OutboxMessage", "Pipeline", "ReferenceData", "ServingEvent", "TimelineEntry",
]
