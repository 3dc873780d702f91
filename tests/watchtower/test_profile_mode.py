"""Profile mode through the service: a monitor's `mode` is validated, stored and shown; "profile" and "auto" (above
WATCHTOWER_PROFILE_MODE_EVENTS) passes test merged profiles, and each result's mode and note are stored, served by
GET /models/{name}/checks and shown on the incident page."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from detectors.base import DATASET, PREDICTION
from tests import factories
from tests.factories import BuiltModels
from watchtower import windows
from watchtower.clock import utcnow
from watchtower.events.segstore import binding
from watchtower.monitor import PassResult, run_monitor
from watchtower.registry.models import Monitor
from watchtower.runtime import Runtime

PROFILED = [{"name": "native_drift"}, {"name": "prediction_drift"}, {"name": "missing_values"},
            {"name": "non_finite"}, {"name": "schema_mismatch"}, {"name": "out_of_range"},
            {"name": "unseen_categories"},
            {"name": "volume", "params": {"expected_per_hour": 300}}]


def _monitor(client: TestClient, name: str, **body: Any) -> dict[str, Any]:
    response = client.put(f"/models/churn/monitors/{name}", json=body)
    assert response.status_code == 200, response.text
    [monitor] = [m for m in response.json()["monitors"] if m["name"] == name]
    return monitor  # type: ignore[no-any-return]


def _modes(result: PassResult) -> dict[str, set[str]]:
    return {o.detector: {f.mode for f in o.findings} for o in result.outcomes}


def test_a_profile_monitor_tests_profiles_on_a_small_window_and_stores_the_mode(
        client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    factories.serve(client, "churn", factories.make_frame(200, seed=5))
    assert _monitor(client, "sketched", detectors=PROFILED, min_events=50, mode="profile")["mode"] == "profile"
    assert _monitor(client, "rows", detectors=PROFILED, min_events=50, mode="exact")["mode"] == "exact"
    sketched, exact = run_monitor(runtime, "churn", "sketched"), run_monitor(runtime, "churn", "rows")
    tested = [d["name"] for d in PROFILED if d["name"] != "unseen_categories"]  # churn has no categorical feature
    assert _modes(sketched) == {name: {"sketch k=1024"} for name in tested} | {"unseen_categories": set()}
    assert _modes(exact) == {name: {"exact"} for name in tested} | {"unseen_categories": set()}
    # The same verdicts; counted shares equal, KS D within the sketch's bound (the p-values differ: the exact
    # test uses the exact small-sample distribution, which needs the rows).
    rows = {(o.detector, f.test, f.feature): f for o in exact.outcomes for f in o.findings}
    profiled = {(o.detector, f.test, f.feature): f for o in sketched.outcomes for f in o.findings}
    assert {k: f.breached for k, f in profiled.items()} == {k: f.breached for k, f in rows.items()}
    for key, f in profiled.items():
        if f.test == "ks":
            assert abs(f.statistic - rows[key].statistic) <= f.extra["error_bound"] + 1e-12  # type: ignore[operator]
        elif f.test != "non_finite_share":  # the profile counts both infinities together: other extras
            assert f.score == pytest.approx(rows[key].score, abs=1e-12), key
    assert sketched.status == exact.status == "ok"

    checks = client.get("/models/churn/checks", params={"limit": 50}).json()
    stored = {(c["monitor"], c["detector"]): c for c in checks}
    assert stored["sketched", "native_drift"]["n_current"] == 200
    assert stored["sketched", "native_drift"]["n_reference"] == 1500
    results = stored["sketched", "native_drift"]["results"]
    assert {r["mode"] for r in results} == {"sketch k=1024"} and all(r["note"] == "" for r in results)
    assert all(0 <= r["extra"]["error_bound"] < 0.01 for r in results)
    assert {r["mode"] for c in checks if c["monitor"] == "rows" for r in c["results"]} == {"exact"}


def test_auto_switches_to_profiles_above_the_setting(client: TestClient, runtime: Runtime,
                                                     models: BuiltModels) -> None:
    factories.register_tensor(client, models)
    factories.serve(client, "churn", factories.make_frame(200, seed=6))
    assert _monitor(client, "auto", detectors=PROFILED, min_events=50)["mode"] == "auto"  # the default
    runtime.settings.profile_mode_events = 200  # not more than 200 events: exact
    assert set().union(*_modes(run_monitor(runtime, "churn", "auto")).values()) == {"exact"}
    runtime.settings.profile_mode_events = 199
    assert set().union(*_modes(run_monitor(runtime, "churn", "auto")).values()) == {"sketch k=1024"}
    assert client.get("/models/churn/checks", params={"limit": 1}).json()[0]["results"][0]["mode"] == "sketch k=1024"


def test_a_shifted_window_breaches_on_profiles_and_the_incident_shows_the_mode(
        client: TestClient, runtime: Runtime, models: BuiltModels, act_on_any_breach: None) -> None:
    factories.register_tensor(client, models)
    factories.serve(client, "churn", factories.make_frame(400, seed=7, shift=1.0))
    _monitor(client, "sketched", detectors=[{"name": "native_drift"}], min_events=50, mode="profile")
    result = run_monitor(runtime, "churn", "sketched")
    assert result.status == "breached" and result.incident_id is not None
    drifted = {f.feature for o in result.outcomes for f in o.findings if f.breached}
    assert drifted == {"f1", "f2"}
    evidence = client.get(f"/incidents/{result.incident_id}").json()["evidence"]
    [finding] = [f for f in evidence["checks"][0]["findings"] if f["feature"] == "f1"]
    assert finding["mode"] == "sketch k=1024" and finding["note"] == ""
    assert evidence["window"]["first_event_at"] is not None  # no row was read: the event index gave it
    assert evidence["diagnosis"]["rows"] == evidence["diagnosis"]["volume"]["rows"] == 400  # from the profile
    # Per-feature numbers need rows: the diagnosis read a sample of the window's events.
    f1 = evidence["diagnosis"]["features"]["f1"]
    assert f1["p"] < 1e-6 and f1["rows"] == 400
    page = client.get(f"/postmortems/incidents/{result.incident_id}")
    assert page.status_code == 200 and "sketch k=1024, ±" in page.text


def test_categories_beyond_the_cap_switch_tests_and_the_note_is_stored(
        client: TestClient, runtime: Runtime, models: BuiltModels) -> None:
    # Three colours against a cap of two (profiles of the reference and of the segments): chi-square gives way
    # to L-infinity and Jensen-Shannon.
    runtime.settings.profile_category_cap = 2
    binding.bind(runtime.engine, runtime.settings)
    try:
        response = factories.register(client, factories.named_spec("churn"), models.named_primary,
                                      models.named_fallback, models.reference)
        assert response.status_code == 201, response.text
        factories.serve(client, "churn", factories.make_frame(300, seed=8), columns=["f1", "f2", "color"])
        _monitor(client, "sketched", detectors=[{"name": "native_drift"}], min_events=50, mode="profile")
        run_monitor(runtime, "churn", "sketched")
    finally:
        runtime.settings.profile_category_cap = 10_000
        binding.bind(runtime.engine, runtime.settings)
    [run] = client.get("/models/churn/checks").json()
    colour = {r["test"]: r for r in run["results"] if r["feature"] == "color"}
    assert sorted(colour) == ["jensen_shannon", "linf"]
    assert all("beyond the cap" in r["note"] and r["extra"]["capped"] == 1.0 for r in colour.values())
    assert {r["test"] for r in run["results"] if r["feature"] == "f1"} == {"ks"}


@pytest.mark.parametrize("where", ["put", "register"])
def test_a_bad_mode_is_a_422_naming_the_field(client: TestClient, models: BuiltModels, where: str) -> None:
    if where == "put":
        factories.register_tensor(client, models)
        response = client.put("/models/churn/monitors/m", json={"mode": "fast"})
        field = "body.mode"
    else:
        response = factories.register(client, factories.tensor_spec(monitors=[{"name": "m", "mode": "sketch"}]),
                                      models.tensor_primary, models.tensor_fallback, models.reference)
        field = "spec.monitors.0.mode"
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_registration_stores_the_mode_and_a_put_changes_it(client: TestClient, models: BuiltModels) -> None:
    body = factories.register_tensor(client, models, monitors=[{"name": "big", "mode": "profile"}])
    assert [(m["name"], m["mode"]) for m in body["monitors"]] == [("big", "profile")]
    assert _monitor(client, "big", mode="exact")["mode"] == "exact"
    assert client.get("/models/churn").json()["monitors"][0]["mode"] == "exact"


def test_profile_mode_reads_no_columns_for_detectors_that_run_on_profiles() -> None:
    schema = {"f1": "numeric", "color": "categorical"}
    profiled = Monitor(model_id=1, name="m", detectors=PROFILED, interval_s=60, window_s=60, min_events=1)
    assert windows.window_columns(profiled, schema, profiled=True) == []
    assert windows.window_columns(profiled, schema) is None  # exact: the quality checks read every column
    mixed = Monitor(model_id=1, name="m", detectors=[*PROFILED, {"name": "latency"}], interval_s=60, window_s=60,
                    min_events=1)
    assert windows.window_columns(mixed, schema, profiled=True) == ["__latency_ms__", "__error__"]
    assert PREDICTION and DATASET  # the profile carries the prediction; dataset findings keep their name


def test_a_profile_mode_window_starts_on_the_bucket_grid(client: TestClient, runtime: Runtime,
                                                        models: BuiltModels) -> None:
    """Its start moves back to the profile bucket's start (no compacted segment crosses it); its end stays now."""
    factories.register_tensor(client, models)
    factories.serve(client, "churn", factories.make_frame(200, seed=8))
    _monitor(client, "sketched", detectors=[{"name": "native_drift"}], min_events=50, mode="profile",
             window_s=3600)
    _monitor(client, "rows", detectors=[{"name": "native_drift"}], min_events=50, mode="exact", window_s=3600)
    now = utcnow()
    run_monitor(runtime, "churn", "sketched", now)
    run_monitor(runtime, "churn", "rows", now)
    runs = {c["monitor"]: c for c in client.get("/models/churn/checks").json()}
    bucket = binding.bound(runtime.engine).bucket_s
    sketched_start = datetime.fromisoformat(runs["sketched"]["window_start"])
    assert sketched_start.timestamp() % bucket == 0
    assert timedelta(0) <= (now - timedelta(seconds=3600)) - sketched_start < timedelta(seconds=bucket)
    assert datetime.fromisoformat(runs["rows"]["window_start"]) == now - timedelta(seconds=3600)
    assert runs["sketched"]["window_end"] == runs["rows"]["window_end"]
