"""Signing a browser in as a real person: the person and their password are created through the JSON API."""

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import TOKEN

PASSWORD = "correct horse battery staple"


def ensure_person(base: str, handle: str, password: str = PASSWORD) -> None:
    """Add `handle` (kept if already there) and set their password, as an admin would."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        added = api.post("/users", json={"handle": handle, "display_name": handle.capitalize()})
        assert added.status_code in (201, 409), added.text
        set_ = api.put(f"/auth/users/{handle}/password", json={"password": password})
        assert set_.status_code == 204, set_.text


def sign_in(page: Page, base: str, handle: str, password: str = PASSWORD) -> None:
    """Sign in through the form; the session cookie is HttpOnly, so the page's scripts cannot read it."""
    ensure_person(base, handle, password)
    page.goto(f"{base}/auth/login")
    page.get_by_label("Username").fill(handle)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/postmortems")
    expect(page.locator("header .who")).to_have_text(f"Signed in as {handle}")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["watchtower_session"]["httpOnly"] and cookies["watchtower_session"]["sameSite"] == "Lax", cookies
    assert page.evaluate("document.cookie") == ""
