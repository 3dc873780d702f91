"""The silences page in a real headless Chromium: list by state, add one (a bad regex is refused by name),
expire one; signed-in and CSRF-checked like the postmortem pages, and user text escaped."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests.e2e.test_pages import SIGNER, XSS, _sign_in, _submit


def _pending(client: TestClient, comment: str) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(hours=3)
    response = client.post("/silences", json={
        "matchers": [{"name": "detector", "value": "ks_.*", "is_regex": True, "is_equal": False},
                     {"name": "model", "value": "fraud"}],
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
        "created_by": "grace", "comment": comment})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _row(view: Page, state: str, silence_id: int) -> Any:
    return view.locator(f"#{state}-silences tr.silence[data-id='{silence_id}']")


def test_silences_page_lists_adds_and_expires(live_server: str, client: TestClient, page: Page,  # noqa: F811
                                              dialogs: list[str]) -> None:  # noqa: F811 (fixtures of test_pages)
    pending = _pending(client, XSS[0])
    page.goto(f"{live_server}/oncall/silences")
    expect(page.get_by_role("heading", name="Silences", level=1)).to_be_visible()
    expect(page.get_by_text("to add or expire silences")).to_be_visible()  # read-only until signed in
    expect(page.get_by_role("button", name="Add silence")).to_have_count(0)
    expect(page.locator("#active-silences")).to_contain_text("None.")
    row = _row(page, "pending", pending["id"])
    expect(row).to_contain_text('detector!~"ks_.*"')
    expect(row).to_contain_text('model="fraud"')
    expect(row).to_contain_text(XSS[0])  # shown as text, never run
    expect(row.get_by_role("button")).to_have_count(0)

    _sign_in(page, live_server)
    _submit(page, lambda: page.get_by_role("link", name="Silences").click())
    page.get_by_label("Label 1").select_option("model")
    page.get_by_label("Operator 1").select_option("=~")
    page.get_by_label("Value 1").fill("chu(rn")
    page.get_by_label("Comment").fill("retraining churn")
    _submit(page, lambda: page.get_by_role("button", name="Add silence").click(), status=422)
    expect(page.get_by_role("alert")).to_contain_text("bad regular expression 'chu(rn'")
    expect(page.get_by_text("matchers.0:")).to_be_visible()
    assert [s["id"] for s in client.get("/silences").json()] == [pending["id"]]  # nothing added

    page.goto(f"{live_server}/oncall/silences")
    page.get_by_label("Label 1").select_option("model")
    page.get_by_label("Operator 1").select_option("=")
    page.get_by_label("Value 1").fill("churn")
    page.get_by_label("Label 2").select_option("feature")
    page.get_by_label("Operator 2").select_option("=~")
    page.get_by_label("Value 2").fill("f[12]")
    page.get_by_label("Hours").fill("4")
    page.get_by_label("Comment").fill(XSS[1])
    _submit(page, lambda: page.get_by_role("button", name="Add silence").click())
    [added] = client.get("/silences", params={"state": "active"}).json()
    assert added["created_by"] == SIGNER and added["comment"] == XSS[1]
    assert [(m["name"], m["op"], m["value"]) for m in added["matchers"]] == [
        ("model", "=", "churn"), ("feature", "=~", "f[12]")]
    ends, starts = datetime.fromisoformat(added["ends_at"]), datetime.fromisoformat(added["starts_at"])
    assert ends - starts == timedelta(hours=4)
    row = _row(page, "active", added["id"])
    expect(row.locator("code.matcher")).to_have_text(['model="churn"', 'feature=~"f[12]"'])
    expect(row).to_contain_text(SIGNER)
    expect(row).to_contain_text(XSS[1])

    _submit(page, lambda: row.get_by_role("button", name=f"Expire silence #{added['id']}").click())
    expect(_row(page, "expired", added["id"])).to_contain_text(f"expired by {SIGNER}")
    expect(page.locator("#active-silences")).to_contain_text("None.")
    assert client.get("/silences", params={"state": "expired"}).json()[0]["expired_by"] == SIGNER

    # A form POST needs the session and its CSRF token.
    forged = page.request.post(f"{live_server}/oncall/silences/{pending['id']}/expire", form={"csrf": "forged"})
    assert forged.status == 401 and "CSRF" in forged.text()
    anonymous = TestClient(client.app).post(f"/oncall/silences/{pending['id']}/expire", data={"csrf": ""})
    assert anonymous.status_code == 401
    assert client.get("/silences", params={"state": "pending"}).json()[0]["id"] == pending["id"]
    assert dialogs == []
