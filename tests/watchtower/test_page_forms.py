"""CSRF on every page form: each POST route of the pages, enumerated from the app itself (so a new form is
covered the day it is added), refuses a signed-in browser's POST without its session's CSRF token or with
another one, and nothing is written."""

import re

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from tests.watchtower.signin_helpers import add_person, page_csrf, signed_in
from watchtower.lazy_routes import all_routes

# Counted by sign-in itself, so they may change while forms are refused.
# Sign-in bookkeeping and the audit log (which records refused attempts too) are not what a form writes.
SIGN_IN_TABLES = {"web_session", "sign_in_failure", "audit_log"}


def page_posts(app: FastAPI) -> list[str]:
    """Every form POST the pages take: the POST routes left out of the OpenAPI schema (FastAPI includes
    routers lazily, so the routes are walked through their contexts; all_routes loads the routers the app
    itself imports at first use)."""
    return sorted({str(r.path) for r in iter_route_contexts(all_routes(app)) if "POST" in (r.methods or set())
                   and not getattr(r, "include_in_schema", True)})


def _rows(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {t.name: session.exec(select(func.count()).select_from(t)).one()
                for t in SQLModel.metadata.sorted_tables if t.name not in SIGN_IN_TABLES}


def test_every_page_form_refuses_a_missing_or_foreign_csrf_token(app: FastAPI, db: Engine,
                                                                  client: TestClient) -> None:
    paths = page_posts(app)
    # The enumeration finds the forms we know of (and therefore any added later the same way).
    assert {"/auth/login", "/auth/logout", "/auth/password", "/postmortems/new",
            "/postmortems/incidents/{incident_id}/notes", "/oncall/people", "/oncall/silences",
            "/oncall/schedules/{schedule_id}/overrides"} <= set(paths), paths
    incident = client.post("/incidents", json={"title": "Target", "author": "ana"}).json()["id"]
    add_person(db, "ana")
    browser = signed_in(app, "ana")
    other = signed_in(app, "ana")  # a second session of the same person: its token is not this one's
    foreign = page_csrf(other)
    assert foreign != page_csrf(browser)
    before = _rows(db)
    for path in paths:
        url = re.sub(r"\{[a-z_]+\}", str(incident), path)
        form = {"title": "forged", "text": "forged", "status": "resolved", "handle": "zed", "display_name": "Zed",
                "tag": "config-change", "markdown": "forged", "base_revision": "0", "user": "ana",
                "start": "2030-01-01T00:00", "end": "2030-01-02T00:00", "value": "x", "name": "model"}
        for label, sent in [("without a token", form), ("with another session's token", form | {"csrf": foreign})]:
            refused = browser.post(url, data=sent, follow_redirects=False)
            assert refused.status_code == 401, (path, label, refused.status_code, refused.text[:300])
            assert refused.headers["content-type"].startswith("text/html"), (path, label)
            assert "CSRF" in refused.text or "reload the page" in refused.text, (path, label)
    assert _rows(db) == before  # nothing was written by any refused form
    assert "Signed in as ana" in browser.get("/postmortems").text  # a refused logout did not log out

    # The same forms with the right token work (so the refusals above were about the token).
    token = page_csrf(browser)
    filed = browser.post("/postmortems/new", data={"csrf": token, "title": "Filed from the page"},
                         follow_redirects=False)
    assert filed.status_code == 303
    assert browser.post("/auth/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert "Signed in as" not in browser.get("/postmortems").text


def test_signed_out_form_posts_are_refused_with_the_sign_in_hint(app: FastAPI, db: Engine) -> None:
    anonymous = TestClient(app)
    for path in page_posts(app):
        if path == "/auth/login":
            continue
        url = re.sub(r"\{[a-z_]+\}", "1", path)
        refused = anonymous.post(url, data={"csrf": ""}, follow_redirects=False)
        assert refused.status_code == 401 and "sign in at /auth/login" in refused.text, (path, refused.text[:300])
