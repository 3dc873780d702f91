"""The postmortem pages in a real headless Chromium: search by words and tag, read an incident, escaping.

The incident is opened the way production opens one: a registered model, shifted traffic served through
the API, and a monitor pass. Chromium is Debian's (/usr/bin/chromium); without it these tests fail.
"""

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright
from sqlalchemy.engine import Engine

from tests import factories
from watchtower.monitor import run_monitor
from watchtower.runtime import Runtime

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Screenshots land in a temp dir; WATCHTOWER_SCREENSHOTS=docs refreshes the ones the README shows.
DOCS = Path(__file__).resolve().parents[2] / "docs"
SHIFT_TAG = "feature-distribution-shift"
OTHER_TAG = "config-change"
ACTIONS = ["pause_pipeline", "swap_model", "open_incident", "notify"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module; missing Chromium is a failure, never a skip."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: these browser tests need Debian's chromium "
                    "(apt-get install chromium); Playwright's own browser download is not used")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no shared cookies or cache) per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def incident(client: TestClient, models: factories.BuiltModels, runtime: Runtime) -> dict[str, Any]:
    """A real incident: model 'churn' serves shifted traffic and its default monitor breaches."""
    factories.register_tensor(client, models)
    factories.serve(client, "churn", factories.make_frame(300, seed=5, shift=1.5))
    result = run_monitor(runtime, "churn", "default")
    assert result.status == "breached" and result.incident_id is not None, result
    response = client.get(f"/incidents/{result.incident_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    keys = [t["tag"] for t in body["tags"]]
    assert SHIFT_TAG in keys and OTHER_TAG not in keys, keys
    return body


def _submit(page: Page, action: Callable[[], None]) -> Response:
    """Run what submits the form and wait for the page it navigates to."""
    with page.expect_navigation() as navigation:
        action()
    response = navigation.value
    assert response is not None and response.ok, response
    return response


def _screenshot(page: Page, db: Engine, name: str, tmp_path: Path) -> None:
    """A full-page screenshot, in the SQLite run only so the PostgreSQL run does not overwrite it."""
    if db.dialect.name != "sqlite":
        return
    path = (DOCS if os.environ.get("WATCHTOWER_SCREENSHOTS") == "docs" else tmp_path) / name
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 0


def test_search_by_words_and_tag(live_server: str, page: Page, incident: dict[str, Any], db: Engine,
                                 tmp_path: Path) -> None:
    page.goto(f"{live_server}/postmortems")
    words, tag = page.locator("#q"), page.locator("#tag")
    rows = page.locator("tr.incident")

    words.press_sequentially("churn")
    _submit(page, lambda: words.press("Enter"))
    expect(page).to_have_url(re.compile(r"/postmortems\?q=churn"))
    expect(words).to_have_value("churn")
    expect(page.locator("#result-count")).to_have_text("1 incident")
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("link", name=incident["title"])).to_be_visible()
    expect(rows.first).to_contain_text(incident["severity"])
    expect(rows.first).to_contain_text(SHIFT_TAG)
    _screenshot(page, db, "search-page.png", tmp_path)

    words.fill("zebrafish")
    _submit(page, lambda: words.press("Enter"))
    expect(words).to_have_value("zebrafish")
    expect(page.locator("#result-count")).to_have_text("0 incidents")
    expect(page.get_by_text("No incident matches.")).to_be_visible()
    expect(rows).to_have_count(0)

    words.fill("")
    tag.select_option(SHIFT_TAG)
    _submit(page, lambda: page.get_by_role("button", name="Search").click())
    expect(page).to_have_url(re.compile(rf"tag={SHIFT_TAG}"))
    expect(tag).to_have_value(SHIFT_TAG)
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("link", name=incident["title"])).to_be_visible()

    tag.select_option(OTHER_TAG)
    _submit(page, lambda: page.get_by_role("button", name="Search").click())
    expect(tag).to_have_value(OTHER_TAG)
    expect(page.locator("#result-count")).to_have_text("0 incidents")
    expect(page.get_by_text("No incident matches.")).to_be_visible()
    expect(rows).to_have_count(0)


def test_incident_page_from_search(live_server: str, page: Page, incident: dict[str, Any],
                                   db: Engine, tmp_path: Path) -> None:
    page.goto(f"{live_server}/postmortems")
    _submit(page, lambda: page.get_by_role("link", name=incident["title"]).click())
    expect(page).to_have_url(f"{live_server}/postmortems/incidents/{incident['id']}")

    expect(page.locator("h1")).to_have_text(f"#{incident['id']} {incident['title']}")
    # Drift alone with every mitigation done is SEV3 (open_incident.severity_of).
    assert incident["severity"] == "SEV3", incident["evidence"].get("severity_rule")
    expect(page.locator("main .sev")).to_have_text("SEV3")
    expect(page.locator("main .status-open")).to_have_text("open")
    expect(page.locator("main p .tag", has_text=SHIFT_TAG)).to_be_visible()

    features = page.locator("main table tbody tr td:first-child").all_inner_texts()
    assert {"f1", "f2"} <= set(features), features

    entries = page.locator("ol.timeline > li")
    expect(entries.first).to_be_visible()
    kinds = page.locator("ol.timeline > li > span.tag").all_inner_texts()
    assert [k for k in kinds if k in ACTIONS] == ACTIONS, kinds  # mitigate first, then record and tell
    for action in ACTIONS:
        entry = entries.filter(has=page.locator("span.tag", has_text=re.compile(rf"^{action}$")))
        expect(entry).to_have_count(1)
        expect(entry).not_to_contain_text("FAILED")
    _screenshot(page, db, "incident-page.png", tmp_path)


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>'])
def test_search_words_are_escaped(live_server: str, page: Page, incident: dict[str, Any],
                                  payload: str) -> None:
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.goto(f"{live_server}/postmortems")
    words = page.locator("#q")
    words.fill(payload)
    response = _submit(page, lambda: words.press("Enter"))

    expect(words).to_have_value(payload)
    expect(page.get_by_text("No incident matches.")).to_be_visible()
    assert page.locator("script, img").count() == 0
    html = response.text()
    assert payload not in html
    assert f'value="{escape(payload)}"' in html
    page.wait_for_load_state("load")
    assert dialogs == []
