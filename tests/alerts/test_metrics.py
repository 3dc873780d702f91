"""/metrics exposes serving, monitoring and state metrics with the right values."""

import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests import factories
from tests.factories import BuiltModels
from tests.postmortems.helpers import file
from watchtower import gauges
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


@pytest.mark.usefixtures("act_on_any_breach")
def test_metrics_follow_a_breach(client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    factories.register_tensor(client, models, monitors=[{"detectors": [{"name": "stat_drift"}], "min_events": 100}])
    factories.serve(client, "churn", factories.make_frame(150, seed=5, shift=1.0))
    before = _samples(client)
    assert before[("watchtower_active_version", (("model", "churn"), ("role", "primary")))] == 1
    assert before[("watchtower_pipeline_paused", (("pipeline", "churn"),))] == 0
    assert before[("watchtower_open_incidents", (("model", "churn"),))] == 0
    assert before[("watchtower_predictions_total", (("model", "churn"), ("role", "primary")))] == 150
    assert before[("watchtower_prediction_latency_seconds_count", (("model", "churn"),))] == 1  # one batch

    run_monitor(runtime, "churn", "default")
    factories.serve(client, "churn", factories.make_frame(7, seed=6))
    after = _samples(client)
    assert after[("watchtower_active_version", (("model", "churn"), ("role", "fallback")))] == 1
    assert after[("watchtower_active_version", (("model", "churn"), ("role", "primary")))] == 0
    assert after[("watchtower_pipeline_paused", (("pipeline", "churn"),))] == 1
    assert after[("watchtower_open_incidents", (("model", "churn"),))] == 1
    assert after[("watchtower_predictions_total", (("model", "churn"), ("role", "fallback")))] == 7
    assert after[("watchtower_breaches_total", (("model", "churn"), ("monitor", "default")))] == 1
    assert after[("watchtower_monitor_pass_duration_seconds_count", (("model", "churn"),))] == 1
    assert after[("watchtower_check_breached",
                  (("detector", "stat_drift"), ("model", "churn"), ("monitor", "default")))] == 1
    key = (("detector", "stat_drift"), ("feature", "f1"), ("model", "churn"), ("monitor", "default"))
    assert after[("watchtower_drift_score", key)] < 1e-6
    f3 = (("detector", "stat_drift"), ("feature", "f3"), ("model", "churn"), ("monitor", "default"))
    assert after[("watchtower_drift_score", f3)] > 0.01


def test_analytics_gauges_are_reused_for_their_ttl(client: TestClient, runtime: Runtime,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """They group every incident, so a scrape within WATCHTOWER_METRICS_ANALYTICS_TTL_S reuses the last read."""
    assert runtime.settings.metrics_analytics_ttl_s == 60
    key = ("watchtower_incidents_by_category", (("category", "config-change"),))
    file(client, "Config pushed without canary", tags=["config-change"])
    assert _samples(client)[key] == 1
    file(client, "Second bad config push", tags=["config-change"])
    assert _samples(client)[key] == 1  # within the TTL
    now = time.monotonic()
    monkeypatch.setattr(gauges, "monotonic", lambda: now + 61)
    assert _samples(client)[key] == 2
