"""Imports every table so SQLModel.metadata (create_all, Alembic) sees them all."""

from alerts.outbox.models import OutboxMessage
from postmortems.models import (
    ActionItem,
    Incident,
    IncidentDocument,
    IncidentTag,
    SimilarLink,
    Taxonomy,
    TimelineEntry,
    WriteupRevision,
)
from watchtower.actions.models import ActionRun
from watchtower.checks.models import CheckResult, CheckRun, FittedThreshold
from watchtower.events.models import EventSegment, FeatureLog, IngestRejection, Label, MetricPoint, ServingEvent
from watchtower.registry.models import ModelVersion, Monitor, MonitoredModel, Pipeline, ReferenceData

__all__ = [
    "ActionItem",
    "ActionRun",
    "CheckResult",
    "CheckRun",
    "EventSegment",
    "FeatureLog",
    "FittedThreshold",
    "Incident",
    "IncidentDocument",
    "IncidentTag",
    "IngestRejection",
    "Label",
    "MetricPoint",
    "ModelVersion",
    "Monitor",
    "MonitoredModel",
    "OutboxMessage",
    "Pipeline",
    "ReferenceData",
    "ServingEvent",
    "SimilarLink",
    "Taxonomy",
    "TimelineEntry",
    "WriteupRevision",
]
