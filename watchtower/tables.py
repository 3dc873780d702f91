"""Imports every table so SQLModel.metadata (create_all, Alembic) sees them all."""

from alerts.oncall.escalation_models import EscalationPolicy, EscalationRoute, IncidentEscalation
from alerts.oncall.models import RotationLayer, RotationParticipant, Schedule, ScheduleOverride
from alerts.outbox.models import OutboxMessage
from alerts.silences.models import Silence
from alerts.slack.models import SlackMessage
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
from watchtower.auth.models import ApiToken, AuditEntry, User
from watchtower.auth.session_models import SignInFailure, WebSession
from watchtower.checks.models import CheckResult, CheckRun, FittedThreshold
from watchtower.events.models import EventSegment, FeatureLog, IngestRejection, Label, MetricPoint, ServingEvent
from watchtower.policy.models import ActionHold, PolicyDecision, ResponsePolicy
from watchtower.registry.models import ModelVersion, Monitor, MonitoredModel, Pipeline, ReferenceData
from watchtower.scheduler.models import JobHeartbeat, JobRun, SchedulerLease

__all__ = [
    "ActionHold",
    "ActionItem",
    "ActionRun",
    "ApiToken",
    "AuditEntry",
    "CheckResult",
    "CheckRun",
    "EscalationPolicy",
    "EscalationRoute",
    "EventSegment",
    "FeatureLog",
    "FittedThreshold",
    "Incident",
    "IncidentEscalation",
    "IncidentDocument",
    "IncidentTag",
    "IngestRejection",
    "JobHeartbeat",
    "JobRun",
    "Label",
    "MetricPoint",
    "ModelVersion",
    "Monitor",
    "MonitoredModel",
    "OutboxMessage",
    "Pipeline",
    "PolicyDecision",
    "ReferenceData",
    "ResponsePolicy",
    "RotationLayer",
    "RotationParticipant",
    "Schedule",
    "ScheduleOverride",
    "SchedulerLease",
    "ServingEvent",
    "Silence",
    "SignInFailure",
    "SimilarLink",
    "SlackMessage",
    "Taxonomy",
    "TimelineEntry",
    "User",
    "WebSession",
    "WriteupRevision",
]
