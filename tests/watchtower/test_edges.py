"""Safe edges on SQLite and PostgreSQL: trusted Host names, relative redirects and back links, security headers
on every page, and /docs served without the internet."""

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.conftest import TOKEN
from tests.watchtower.signin_helpers import add_person, page_csrf, signed_in
from watchtower.edges.headers import CSP
from watchtower.edges.hosts import host_name
from watchtower.edges.links import local_path

EVIL = "evil.example"
READER = {"Authorization": f"Bearer {TOKEN}"}  # reads need a role: what is tested here is the edge
BACK = re.compile(r'<a href="([^"]*)">Go back</a>')


@pytest.mark.parametrize("path", ["/", "/postmortems/", "/postmortems", "/docs", "/auth/login", "/models"])
def test_a_foreign_host_header_is_refused_before_any_route(app: FastAPI, db: Engine, path: str) -> None:
    browser = TestClient(app, headers=READER)
    for host in (EVIL, f"{EVIL}:8000", "watchtower.test.evil.example", "[::2]"):
        refused = browser.get(path, headers={"Host": host}, follow_redirects=False)
        assert refused.status_code == 400, (path, host, refused.status_code)
        assert EVIL not in refused.headers.get("location", "")
    # The trusted names work: the public URL's host, localhost with a port, IPv6 loopback, WATCHTOWER_ALLOWED_HOSTS.
    for host in ("watchtower.test", "localhost:8000", "127.0.0.1", "[::1]:8000", "testserver"):
        answer = browser.get(path, headers={"Host": host}, follow_redirects=False)
        assert answer.status_code in (200, 303, 307, 308), (path, host, answer.status_code)
        assert answer.headers.get("location", "/").startswith(("/", f"http://{host}/")), answer.headers


def test_probes_answer_any_host_and_redirects_stay_relative(app: FastAPI, db: Engine) -> None:
    browser = TestClient(app, headers=READER)
    assert browser.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200  # kubelet probes
    assert browser.get("/metrics", headers={"Host": "10.1.2.3:8000"}).status_code == 200  # Prometheus scrapes
    assert browser.get("/", follow_redirects=False).headers["location"] == "/postmortems"
    assert browser.get("/postmortems/login", follow_redirects=False).headers["location"] == "/auth/login"


def test_next_and_back_links_only_lead_to_paths_on_this_site() -> None:
    for bad in ["//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "", None,
                "/\tjavascript:alert(1)", "evil.example/x", "/x\\@evil.example"]:
        assert local_path(bad, "/home") == "/home", bad
    assert local_path("/postmortems/incidents/3?x=1#t", "/home") == "/postmortems/incidents/3?x=1#t"
    assert [host_name(h) for h in ("a.b:80", "[::1]:8000", "::1", "A.B")] == ["a.b", "::1", "::1", "a.b"]


def test_the_error_page_back_link_never_uses_a_foreign_or_script_referer(app: FastAPI, db: Engine) -> None:
    browser = TestClient(app, headers=READER)
    expected = {
        "javascript:alert(document.cookie)": "/postmortems",
        "JaVaScRiPt:alert(1)": "/postmortems",
        "data:text/html,<script>alert(1)</script>": "/postmortems",
        "https://evil.example/phish": "/postmortems",
        "http://evil.example/postmortems?q=1": "/postmortems",
        "http://testserver//evil.example/x": "/postmortems",
        "http://testserver/postmortems?q=drift&sort=date": "/postmortems?q=drift&amp;sort=date",
    }
    for referer, link in expected.items():
        page = browser.get("/postmortems?page=0", headers={"Referer": referer})  # an invalid page: the error page
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        assert BACK.findall(page.text) == [link], (referer, BACK.findall(page.text))


def test_pages_and_api_answers_carry_the_security_headers(app: FastAPI, db: Engine, client: TestClient) -> None:
    add_person(db, "ana")
    browser = signed_in(app, "ana")
    for path in ["/postmortems", "/postmortems/new", "/postmortems/analytics", "/oncall", "/oncall/people",
                 "/oncall/silences", "/oncall/escalation", "/auth/login", "/auth/password", "/docs", "/models",
                 "/static/pages.css"]:
        answer = browser.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        headers = answer.headers
        assert headers["content-security-policy"] == CSP, path
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY", path
        assert headers["referrer-policy"] == "same-origin", path
        assert "strict-transport-security" not in headers  # http public URL: no HSTS
    assert "frame-ancestors 'none'" in CSP and "script-src 'self';" in CSP and "unsafe-inline" not in \
        CSP.split("style-src-attr")[0]
    assert browser.get("/auth/password").text.count(page_csrf(browser, "/auth/password")) >= 2  # form + logout


def test_docs_are_served_from_this_server_with_no_inline_script(app: FastAPI, db: Engine) -> None:
    browser = TestClient(app, headers=READER)
    page = browser.get("/docs").text
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="/static/' in attrs and body.strip() == "" for attrs, body in scripts), scripts
    assert "http" not in page.replace('data-openapi="/openapi.json"', "")  # nothing from a CDN
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert browser.get(asset).status_code == 200, asset
    assert browser.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not offered
