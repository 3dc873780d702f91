"""Browser fixtures for the page tests: Debian's Chromium, headless, driven by Playwright."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from tests.conftest import TOKEN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


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
    # Reads need a role: the browser sends the admin token with every request, as a reverse proxy in front of a
    # single-sign-on could. Form posts still need a signed-in page session and its CSRF token.
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
    context.set_default_timeout(5000)  # a missing element fails in seconds, not Playwright's default 30 s
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """Every alert/confirm/prompt the page opens (escaping tests expect none)."""
    seen: list[str] = []

    def record(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return seen
