"""The escalation policies page in a real headless Chromium: reached from /oncall, each policy's steps in
order with their targets and waits, repeats, the default marked, and which models route to each."""

from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from tests import factories
from tests.alerts.escalation_helpers import add_people, add_policy, step, two_hour_schedule

XSS = "<script>alert(1)</script>"


def test_the_escalation_policies_page(live_server: str, page: Page, client: TestClient,  # noqa: F811
                                      models: factories.BuiltModels) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    add_people(client)
    two_hour_schedule(client)
    factories.register_tensor(client, models, name="churn")
    factories.register_tensor(client, models, name="fraud")
    add_policy(client, "ml-default", [step(15, schedule="primary"), step(30, user="bob", channel="#ml-leads")],
               repeat=2)
    add_policy(client, "churn-team", [step(5, user="alice")], default=False)
    assert client.patch("/escalation-policies/churn-team", json={"description": XSS}).status_code == 200
    assert client.put("/models/churn/escalation", json={"policy": "churn-team"}).status_code == 200

    page.goto(f"{live_server}/oncall")
    page.get_by_role("link", name="Escalation policies").click()
    expect(page).to_have_url(f"{live_server}/oncall/escalation")
    default = page.locator('section[data-policy="ml-default"]')
    expect(default.locator("h2")).to_have_text("ml-default (default)")
    expect(default.locator("li.step")).to_have_count(2)
    expect(default.locator("li.step").nth(0)).to_contain_text("whoever is on call for primary, then wait 15 min")
    expect(default.locator("li.step").nth(1)).to_contain_text("bob, channel #ml-leads, then wait 30 min")
    expect(default.locator(".repeat")).to_have_text("Repeated 2 more times until someone acknowledges.")
    expect(default.locator(".models .model")).to_have_text(["fraud"])  # churn has its own
    team = page.locator('section[data-policy="churn-team"]')
    expect(team.locator("h2")).to_have_text("churn-team")
    expect(team.locator(".models .model")).to_have_text(["churn"])
    expect(team.locator("p.muted")).to_have_text(XSS)  # shown as text, never run
    expect(team.locator(".repeat")).to_have_text("Not repeated.")
    assert dialogs == []
