"""The people page in headless Chromium: everyone with their local time, and adding someone from the form."""

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests.e2e.test_pages import SIGNER, XSS, _sign_in, _submit


def test_people_are_listed_and_added_from_the_page(live_server: str, page: Page, dialogs: list[str],
                                                   client: TestClient) -> None:
    assert client.post("/users", json={"handle": "ada", "display_name": XSS[0], "slack_user_id": "U024BE7LH",
                                       "time_zone": "Europe/Berlin"}).status_code == 201
    page.goto(f"{live_server}/oncall")
    page.get_by_role("link", name="People").click()
    ada = page.locator('tr[data-handle="ada"]')
    expect(ada).to_contain_text(XSS[0])  # shown as text, never run
    expect(ada.locator(".local")).to_have_text(__import__("re").compile(r"^\w{3} \d\d:\d\d CE(S)?T$"))
    expect(page.get_by_role("button", name="Add")).to_have_count(0)  # forms need a signed-in person

    _sign_in(page, live_server)
    page.goto(f"{live_server}/oncall/people")
    page.get_by_label("Handle").fill("grace")
    page.get_by_label("Name").fill("Grace Hopper")
    page.get_by_label("Time zone").fill("America/New_York")
    _submit(page, lambda: page.get_by_role("button", name="Add").click())
    expect(page.locator('tr[data-handle="grace"]')).to_contain_text("America/New_York")
    assert client.get("/users/grace").json()["display_name"] == "Grace Hopper"

    page.get_by_label("Handle").fill("bad")
    page.get_by_label("Name").fill("Someone")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    with page.expect_navigation() as refused:
        page.get_by_role("button", name="Add").click()
    assert refused.value is not None and refused.value.status == 422
    expect(page.locator("main")).to_contain_text("unknown time zone 'Mars/Olympus'")
    assert client.get("/users/bad").status_code == 404
    assert dialogs == [] and SIGNER
