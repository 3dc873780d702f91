"""The Content-Security-Policy in a real headless Chromium: every main page and /docs load without a single
violation or console error, Swagger UI (our only JavaScript, from /static) works, and script injected into a
page (an inline <script>, an inline event handler) does not run."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import ConsoleMessage, Page, Route, expect

from tests.e2e.signin import sign_in

PAGES = ["/postmortems", "/postmortems/new", "/postmortems/analytics", "/oncall", "/oncall/people",
         "/oncall/silences", "/oncall/escalation", "/auth/password", "/auth/login"]
LISTEN = """window.__violations = [];
document.addEventListener("securitypolicyviolation",
    e => window.__violations.push(e.effectiveDirective + " " + (e.blockedURI || "inline")));"""


@pytest.fixture
def watched(page: Page) -> Iterator[tuple[Page, list[str]]]:
    """The page, with every console error and uncaught exception recorded, and CSP violations collected."""
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(LISTEN)  # runs before the page's own scripts, CSP or not
    yield page, errors


def _violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__violations")
    return found


def test_pages_and_docs_load_under_the_policy_without_violations(live_server: str, client: TestClient,
                                                                 watched: tuple[Page, list[str]]) -> None:
    page, errors = watched
    incident = client.post("/incidents", json={"title": "CSP check", "author": "ana"}).json()["id"]
    sign_in(page, live_server, "ana")
    for path in [*PAGES, f"/postmortems/incidents/{incident}"]:
        response = page.goto(live_server + path)
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        expect(page.locator("link[rel=stylesheet]")).to_have_attribute("href", "/static/pages.css")
        assert page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == \
            "rgb(17, 22, 31)", path  # the stylesheet applied (it is no longer inline)
        assert _violations(page) == [] and errors == [], (path, _violations(page), errors)

    # /docs: Swagger UI from /static, started by /static/docs.js, renders and reacts to clicks.
    page.goto(f"{live_server}/docs")
    # The schema is built on its first request: allow for that on a busy machine.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Watchtower", timeout=60_000)
    operation = page.locator(".opblock.opblock-get").first
    expect(operation).to_be_visible(timeout=60_000)  # ~100 operations to render
    control = operation.locator(".opblock-summary-control")
    control.click(no_wait_after=True)  # deep linking changes the URL fragment
    expect(control).to_have_attribute("aria-expanded", "true")
    expect(operation.get_by_role("button", name="Try it out")).to_be_visible()
    page.get_by_role("button", name="Authorize").click()
    expect(page.locator(".modal-ux")).to_be_visible()
    assert _violations(page) == [] and errors == [], (_violations(page), errors)


def test_injected_inline_script_does_not_run(live_server: str, watched: tuple[Page, list[str]]) -> None:
    page, _ = watched

    def inject(route: Route) -> None:  # as if the server had echoed an attacker's markup unescaped
        response = route.fetch()
        body = response.text().replace(
            "</main>", '<script>window.__ran = "inline";</script><img src="data:," onerror="window.__ran = '
            "'handler'\"><a id=js href=\"javascript:window.__ran='link'\">x</a></main>")
        headers: dict[str, Any] = dict(response.headers)
        route.fulfill(response=response, body=body, headers=headers)

    page.route(f"{live_server}/postmortems", inject)
    page.goto(f"{live_server}/postmortems")
    page.locator("#js").click()
    expect(page.locator("#js")).to_be_visible()
    page.evaluate("""() => { const s = document.createElement("script");
                             s.textContent = "window.__ran = 'dom'"; document.body.appendChild(s); }""")
    page.wait_for_function("window.__violations.length >= 4")
    assert page.evaluate("window.__ran") is None  # none of the four ran
    directives = {v.split()[0] for v in _violations(page)}
    assert directives <= {"script-src-elem", "script-src-attr", "script-src"} and directives, _violations(page)
