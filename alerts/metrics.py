"""Every Prometheus metric of one app, on its own registry.

Counters and histograms are bumped where things happen; state that lives in the database
(active version, paused pipelines, held actions, open incidents, latest drift scores) is read at scrape time
by StateCollector, so it is right after a restart and the same on every replica.
"""

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The app's metrics; one instance per app, exposed at /metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.predictions = Counter("watchtower_predictions", "Predictions served", ["model", "role"], registry=r)
        self.prediction_latency = Histogram(
            "watchtower_prediction_latency_seconds", "ONNX inference time per predict request", ["model"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.events_ingested = Counter("watchtower_events_ingested", "Serving events stored", ["model"], registry=r)
        self.breaches = Counter("watchtower_breaches", "Monitor passes that breached", ["model", "monitor"],
                                registry=r)
        self.monitor_pass = Histogram("watchtower_monitor_pass_duration_seconds", "One monitor pass",
                                      ["model"], buckets=PASS_BUCKETS, registry=r)
        self.monitor_failures = Counter("watchtower_monitor_failures", "Monitor passes or detectors that crashed",
                                        ["model"], registry=r)
        self.action_failures = Counter("watchtower_action_failures", "Actions that raised", ["action"], registry=r)
        self.incident_stage = Histogram(
            "watchtower_incident_stage_seconds",
            "Time to detect (from the breaching window's first served event), acknowledge, mitigate or resolve",
            ["stage"],
            buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800), registry=r)
        self.job_runs = Counter("watchtower_job_runs", "Scheduled job runs by outcome: ok, error, slot_taken (another "
                                "replica ran the slot), not_leader", ["job", "outcome"], registry=r)
        self.scheduler_leader = Gauge("watchtower_scheduler_leader", "1 while this process holds the scheduler lease",
                                      registry=r)
        self.scheduler_restarts = Counter("watchtower_scheduler_restarts", "APScheduler threads found dead and "
                                          "replaced", registry=r)
        self.lease_failures = Counter("watchtower_scheduler_lease_failures", "Lease renewals that failed (database "
                                      "unreachable)", registry=r)
        self.dry_run_actions = Counter("watchtower_policy_dry_run_actions", "Actions a dry-run rule would have taken",
                                       ["model", "rule", "action"], registry=r)
        self.breaches_silenced = Counter("watchtower_breaches_silenced", "Breaches recorded whose page a silence held",
                                         ["model"], registry=r)
        self.breaches_inhibited = Counter("watchtower_breaches_inhibited", "Drift/KPI breaches whose page an open "
                                          "data or pipeline incident held", ["model"], registry=r)
        self.alertmanager_groups = Counter("watchtower_alertmanager_notifications", "Alertmanager webhook "
                                           "notifications received, by group status", ["status"], registry=r)
        self.pages_sent = Counter("watchtower_pages_sent", "Escalation pages queued, by channel: dm (a person's "
                                  "direct messages) or channel (a channel or user group)", ["channel"], registry=r)
        self.acknowledgements = Counter("watchtower_acknowledgements", "Incidents acknowledged (API, pages or Slack)",
                                        registry=r)
        self.escalations = Counter("watchtower_escalations", "Escalation steps run because nobody acknowledged (every "
                                   "step after the first, repeats included)", registry=r)
        self.event_buffer = Gauge("watchtower_event_buffer_events", "Events buffered for the event writer or being "
                                  "written (what a kill -9 would lose)", registry=r)
        self.event_flushes = Counter("watchtower_event_flushes", "Event writer flushes (one commit each), by outcome: "
                                     "ok or error (rolled back; async events retried)", ["outcome"], registry=r)
        self.event_flush_duration = Histogram("watchtower_event_flush_duration_seconds", "One event writer flush, "
                                              "commit included", buckets=LATENCY_BUCKETS, registry=r)
        self.event_buffer_waiting = Gauge("watchtower_event_buffer_waiting_requests", "Requests waiting for room in "
                                          "the full event buffer (back-pressure)", registry=r)
        self.event_buffer_timeouts = Counter("watchtower_event_buffer_timeouts", "Requests refused (503) because the "
                                             "event buffer stayed full for WATCHTOWER_LOG_WAIT_S", registry=r)
        self.delivery_failures = Counter("watchtower_delivery_failures", "Slack/webhook deliveries that failed",
                                         ["kind"], registry=r)

    def watch_state(self, read_state: Callable[[], dict[str, list[tuple[dict[str, str], float]]]]) -> None:
        """Register the scrape-time reader of database state."""
        self.registry.register(StateCollector(read_state))


STATE_GAUGES = {
    "watchtower_active_version": "1 for the role now serving each model (primary or fallback)",
    "watchtower_pipeline_paused": "1 while a pipeline is paused",
    "watchtower_action_held": "1 while an operator's restore or resume holds an automatic action (swap_model, "
                              "pause_pipeline) of a model",
    "watchtower_open_incidents": "Incidents not yet resolved, per model",
    "watchtower_drift_score": "Latest drift p-value per model and feature (low means drift)",
    "watchtower_check_breached": "1 if the latest check of a detector breached",
    "watchtower_job_last_success_timestamp_seconds": "When each scheduled job last finished without error (Unix s)",
    "watchtower_job_last_error_timestamp_seconds": "When each scheduled job last failed (Unix s)",
    "watchtower_job_interval_seconds": "How often each scheduled job runs",
    "watchtower_job_consecutive_failures": "Failed runs of each job since its last success",
    "watchtower_incidents_by_category": "Incidents per taxonomy category (a tag and its parents)",
    "watchtower_incident_mean_seconds": "Mean time to detect/acknowledge/mitigate/resolve per taxonomy category",
    "watchtower_incidents_by_ml_axis": "Incidents whose tags say ML, non-ML, or unknown",
    "watchtower_outbox_messages": "Outbox messages per kind and status (failed: gave up; GET /outbox?status=failed)",
    "watchtower_outbox_oldest_pending_age_seconds": "Age of the oldest message not delivered yet (pending or "
                                                    "sending); 0 when there is none",
    "watchtower_schedule_oncall": "1 while someone is on call for the schedule, 0 in a gap",
}


class StateCollector(Collector):
    """Gauges computed from the database at scrape time."""

    def __init__(self, read_state: Callable[[], dict[str, list[tuple[dict[str, str], float]]]]) -> None:
        self._read_state = read_state

    def collect(self) -> Iterator[Any]:
        state = self._read_state()
        for name, help_text in STATE_GAUGES.items():
            samples = state.get(name, [])
            labels = sorted(samples[0][0]) if samples else []
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for sample_labels, value in samples:
                family.add_metric([sample_labels[k] for k in labels], value)
            yield family
