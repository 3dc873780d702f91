"""A guard created from the incident page in Chromium: the proposal pre-filled from the evidence, a bad param
shown by field, and the later incident the guard catches linking back to the postmortem that created it, with
the root cause confirmed there suggested from history."""

import json
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.test_pages import _sign_in, _submit
from tests.postmortems.test_guards import BLOCKS, OPEN_ONLY
from watchtower.monitor import run_monitor_pass
from watchtower.runtime import Runtime


def _unit_change(client: TestClient, runtime: Runtime, seed: int) -> int:
    frame = factories.make_frame(300, seed=seed)
    frame[["f1", "f2"]] *= 1000
    factories.serve(client, "churn", frame)
    [result] = run_monitor_pass(runtime)
    assert result.status == "breached" and result.incident_id is not None, result
    return result.incident_id


def _monitor(client: TestClient) -> list[dict[str, Any]]:
    detectors: list[dict[str, Any]] = client.get("/models/churn").json()["monitors"][0]["detectors"]
    return detectors


def test_a_guard_from_the_incident_page_catches_the_next_failure_and_links_back(
        live_server: str, page: Page, client: TestClient, models: factories.BuiltModels, runtime: Runtime) -> None:
    factories.register_tensor(client, models, monitors=BLOCKS)
    assert client.put("/models/churn/policy", json=OPEN_ONLY).status_code == 200
    first = _unit_change(client, runtime, seed=3)
    _sign_in(page, live_server)
    page.goto(f"{live_server}/postmortems/incidents/{first}")

    proposal = page.locator("form.guard-proposal")
    expect(proposal).to_have_count(1)
    expect(proposal).to_contain_text("values outside the reference range (f1 in [")
    params = json.loads(proposal.get_by_label("Params").input_value())
    assert params == {"features": ["f1", "f2"], "max_share": 0.01}

    # A bad param in the free form: the error page names the field, and nothing is added.
    form = page.locator("#guard-form")
    form.get_by_label("Guard action").fill("Tighter range check")
    form.get_by_label("Detector").select_option("out_of_range")
    form.get_by_label("Params (JSON)").fill('{"max_share": 2}')
    _submit(page, lambda: form.get_by_role("button", name="Add guard").click(), status=422)
    expect(page.locator("main")).to_contain_text("body.guard.params.max_share")
    assert len(_monitor(client)) == 1

    page.goto(f"{live_server}/postmortems/incidents/{first}")
    _submit(page, lambda: page.get_by_role("button", name="Add proposed guard out_of_range").click())
    row = page.locator("tr.action-item")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Guard: out_of_range")
    expect(row).to_contain_text("not yet run")
    assert _monitor(client)[-1]["guard"]["incident_id"] == first

    assert client.put(f"/incidents/{first}/tags/feature-definition-change",
                      json={"author": "ana", "confidence": "confirmed"}).status_code == 200
    assert client.post(f"/incidents/{first}/status", json={"status": "resolved", "author": "ana",
                                                           "reason": "unit fixed upstream"}).status_code == 200
    second = _unit_change(client, runtime, seed=7)  # the same failure again: the guard fires
    page.goto(f"{live_server}/postmortems/incidents/{second}")
    learned = page.locator("tr.tag-row", has_text="feature-definition-change")
    expect(learned.locator("td.reason")).to_contain_text(f"confirmed on #{first}, which had")
    back = page.locator(".caught-by")
    expect(back).to_contain_text(f"Caught by guard from #{first}")
    _submit(page, lambda: back.get_by_role("link").click())
    expect(page).to_have_url(f"{live_server}/postmortems/incidents/{first}#action-items")
    expect(page.locator("tr.action-item .guard-fired")).to_contain_text(f"caught #{second}")
