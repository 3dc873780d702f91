"""The on-call pages in a real headless Chromium: who is on call now and next, two weeks of shifts with
overrides marked, and the override form (signed in, CSRF-checked). Schedules are built through the JSON API;
the clock only picks the dates typed into the form, and no assertion depends on the time of day."""

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests.alerts.oncall_helpers import add_people, add_rotation, add_schedule
from tests.e2e.signin import sign_in

SIGNER = "grace"
XSS = "<script>alert(1)</script>"
BERLIN = ZoneInfo("Europe/Berlin")




@pytest.fixture
def schedules(client: TestClient) -> dict[str, int]:
    """'ml-platform' (Berlin): ada, always, under a business-hours-free layer; 'search' (UTC): no layers, a gap."""
    add_people(client, "ada", "bob", "cy")
    platform = add_schedule(client, "ml-platform", "Europe/Berlin")
    assert client.patch(f"/schedules/{platform}", json={"description": XSS}).status_code == 200
    start = (datetime.now(BERLIN) - timedelta(days=30)).date().isoformat()
    add_rotation(client, platform, name="primary", participants=["ada"], unit="days", shift_length=1,
                 handoff="09:00", start=start)
    return {"ml-platform": platform, "search": add_schedule(client, "search", "UTC")}


def _sign_in(page: Page, base: str) -> None:
    sign_in(page, base, SIGNER)


def test_who_is_on_call_now_and_next(live_server: str, page: Page, schedules: dict[str, int],
                                     tmp_path: Path) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server}/postmortems")
    page.get_by_role("link", name="On call").click()  # the postmortem pages link here
    expect(page).to_have_url(f"{live_server}/oncall")
    platform = page.locator('tr[data-schedule="ml-platform"]')
    expect(platform.locator(".now [data-handle]")).to_have_text("Ada")
    expect(platform.locator(".now")).to_contain_text("layer primary")
    expect(platform.locator(".next [data-handle]")).to_have_attribute("data-handle", "ada")
    search = page.locator('tr[data-schedule="search"]')
    expect(search.locator(".now .gap")).to_have_text("Nobody: this schedule has a gap")
    expect(search.locator(".next")).to_contain_text("nobody in the next five weeks")
    page.screenshot(path=tmp_path / "oncall.png", full_page=True)

    platform.get_by_role("link", name="ml-platform").click()
    expect(page).to_have_url(f"{live_server}/oncall/schedules/{schedules['ml-platform']}")
    expect(page.locator("#days .day")).to_have_count(14)
    expect(page.locator("#days .bar span").first).to_have_text("ada")
    expect(page.locator("#shifts tr.override")).to_have_count(0)
    expect(page.get_by_text(XSS)).to_be_visible()  # shown as text, never run
    expect(page.get_by_role("link", name="Sign in").last).to_be_visible()
    expect(page.locator("#override-form")).to_have_count(0)
    assert dialogs == []


def test_an_override_added_from_the_page_is_marked(live_server: str, page: Page, client: TestClient,
                                                   schedules: dict[str, int], tmp_path: Path) -> None:
    schedule_id = schedules["ml-platform"]
    url = f"{live_server}/oncall/schedules/{schedule_id}"
    _sign_in(page, live_server)
    page.goto(url)
    tomorrow = (datetime.now(BERLIN) + timedelta(days=1)).date()
    page.get_by_label("Who covers").select_option("bob")
    page.get_by_label("Stands in for").select_option("ada")
    page.get_by_label("From (Europe/Berlin)").fill(f"{tomorrow.isoformat()}T10:00")
    page.get_by_label("To (Europe/Berlin)").fill(f"{tomorrow.isoformat()}T14:00")
    page.get_by_label("Reason").fill("dentist")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Add override").click()
    assert navigation.value is not None and navigation.value.status == 200
    expect(page).to_have_url(f"{url}#overrides")
    marked = page.locator("#shifts tr.override")
    expect(marked).to_have_count(1)
    expect(marked).to_have_attribute("data-handle", "bob")
    expect(marked).to_contain_text("for ada")
    expect(marked).to_contain_text(f"{tomorrow.strftime('%a %d %b')} 10:00")
    expect(page.locator("#days .bar span.override")).to_have_text("bob")
    expect(page.locator("#overrides + ul li")).to_contain_text(f"by {SIGNER}: dentist")
    page.screenshot(path=tmp_path / "schedule.png", full_page=True)
    (override,) = client.get(f"/schedules/{schedule_id}/overrides").json()
    start = datetime.combine(tomorrow, datetime.min.time().replace(hour=10), BERLIN)
    assert (override["user"], override["replaces"], override["author"]) == ("bob", "ada", SIGNER)
    assert datetime.fromisoformat(override["start"]) == start

    # A form mistake is an error page naming the field; nothing is added.
    page.get_by_label("From (Europe/Berlin)").fill(f"{tomorrow.isoformat()}T15:00")
    page.get_by_label("To (Europe/Berlin)").fill(f"{tomorrow.isoformat()}T14:00")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Add override").click()
    assert navigation.value is not None and navigation.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("end")
    expect(page.locator("main li")).to_contain_text("must be after start")
    # Without the CSRF token (a forged cross-site form), refused.
    forged = page.request.post(f"{url}/overrides", form={"user": "cy", "start": f"{tomorrow}T01:00",
                                                         "end": f"{tomorrow}T02:00"})
    assert forged.status == 401 and "CSRF" in forged.text()
    assert len(client.get(f"/schedules/{schedule_id}/overrides").json()) == 1
