"""Page sign-in per person on SQLite and PostgreSQL: argon2 hashes, server-side sessions that logout,
deactivation and password changes end, throttling per account and per address, and Secure cookies."""

import hashlib
import subprocess
import sys

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.processes import ROOT, database_url
from tests.watchtower.signin_helpers import PASSWORD, add_person, page_csrf, signed_in, try_sign_in
from watchtower.app import create_app
from watchtower.auth import throttle
from watchtower.auth.models import User
from watchtower.auth.passwords import verify_password
from watchtower.auth.session_models import WebSession
from watchtower.settings import Settings


def _user(engine: Engine, handle: str) -> User:
    with Session(engine) as session:
        user = session.exec(select(User).where(User.handle == handle)).one()
        return user


def _is_signed_in(client: TestClient, handle: str) -> bool:
    return f"Signed in as {handle}" in client.get("/postmortems").text


def test_only_an_argon2_hash_of_the_password_is_stored(client: TestClient, db: Engine) -> None:
    assert client.post("/users", json={"handle": "ana", "display_name": "Ana"}).status_code == 201
    secret = "a long passphrase of mine"
    assert client.put("/auth/users/ana/password", json={"password": secret}).status_code == 204
    stored = _user(db, "ana").password_hash
    assert stored is not None and stored.startswith("$argon2id$") and secret not in stored
    assert verify_password(stored, secret) and not verify_password(stored, secret + "x")
    assert "password" not in str(client.get("/users/ana").json())  # never returned
    short = client.put("/auth/users/ana/password", json={"password": "short"})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "body.password"
    assert client.put("/auth/users/nobody/password", json={"password": secret}).status_code == 404
    assert TestClient(client.app).put("/auth/users/ana/password",  # type: ignore[arg-type]
                                      json={"password": secret}).status_code == 401  # admin only


def test_sign_in_starts_a_server_side_session_and_says_nothing_about_which_part_was_wrong(
        app: FastAPI, db: Engine) -> None:
    add_person(db, "ana")
    add_person(db, "bo", password=None)  # no password set: cannot sign in
    add_person(db, "cy", active=False)
    browser = TestClient(app)
    answers = {}
    for handle, password in [("ana", "wrong password!"), ("nobody", PASSWORD), ("bo", PASSWORD), ("cy", PASSWORD)]:
        refused = try_sign_in(browser, handle, password)
        answers[handle] = (refused.status_code, "wrong username or password" in refused.text)
        assert "watchtower_session" not in refused.headers.get("set-cookie", "")
    assert set(answers.values()) == {(401, True)}, answers
    # A NUL in the username (which no database stores) is a 422 naming the field, never a 500.
    assert try_sign_in(browser, "a\x00b").status_code == 422
    nul = browser.post("/auth/change-password", json={"handle": "a\x00b", "current_password": "x",
                                                       "new_password": "long enough password"})
    assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "body.handle"

    done = try_sign_in(browser, "ana", next="//evil.example/x")
    assert done.status_code == 303 and done.headers["location"] == "/postmortems"  # never off-site
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    session_id = browser.cookies["watchtower_session"]
    with Session(db) as session:
        rows = session.exec(select(WebSession)).all()
    assert [r.key_hash for r in rows] == [hashlib.sha256(session_id.encode()).hexdigest()]  # not the id itself
    assert _is_signed_in(browser, "ana")
    assert try_sign_in(TestClient(app), "ana", next="/oncall?x=1").headers["location"] == "/oncall?x=1"


def test_logout_ends_the_session_so_the_old_cookie_is_worthless(app: FastAPI, db: Engine) -> None:
    add_person(db, "ana")
    browser = signed_in(app, "ana")
    old = browser.cookies["watchtower_session"]
    csrf = page_csrf(browser)
    assert browser.post("/auth/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    replay = TestClient(app, cookies={"watchtower_session": old})
    assert not _is_signed_in(replay, "ana")
    assert replay.post("/postmortems/new", data={"csrf": csrf, "title": "x"}).status_code == 401
    with Session(db) as session:
        assert session.exec(select(WebSession)).all() == []


def test_deactivation_and_password_changes_end_every_session(client: TestClient, app: FastAPI, db: Engine) -> None:
    add_person(db, "ana")
    add_person(db, "bo")
    ana, ana_laptop, bo = signed_in(app, "ana"), signed_in(app, "ana"), signed_in(app, "bo")

    # An admin sets ana's password: both her browsers are signed out, bo is not.
    assert client.put("/auth/users/ana/password", json={"password": "another long one"}).status_code == 204
    assert not _is_signed_in(ana, "ana") and not _is_signed_in(ana_laptop, "ana") and _is_signed_in(bo, "bo")

    # ana changes her own password (JSON API): a wrong current one is a 401; afterwards the old sessions are gone.
    ana = signed_in(app, "ana", "another long one")
    wrong = client.post("/auth/change-password", json={"handle": "ana", "current_password": "nope",
                                                "new_password": "a third long one"})
    assert wrong.status_code == 401
    changed = client.post("/auth/change-password", json={"handle": "ana", "current_password": "another long one",
                                                  "new_password": "a third long one"})
    assert changed.status_code == 204, changed.text
    assert not _is_signed_in(ana, "ana")
    assert try_sign_in(TestClient(app), "ana", "another long one").status_code == 401
    # ...and from the page: this browser stays signed in (with a new session), others do not.
    ana, other = signed_in(app, "ana", "a third long one"), signed_in(app, "ana", "a third long one")
    page = ana.post("/auth/password", data={"csrf": page_csrf(ana), "current_password": "a third long one",
                                            "new_password": "the fourth long one"}, follow_redirects=True)
    assert page.status_code == 200 and "Password changed" in page.text
    assert _is_signed_in(ana, "ana") and not _is_signed_in(other, "ana")

    # Deactivating bo signs him out at once.
    assert client.patch("/users/bo", json={"active": False}).status_code == 200
    assert not _is_signed_in(bo, "bo")
    assert try_sign_in(TestClient(app), "bo").status_code == 401


def test_failed_sign_ins_are_throttled_per_account(app: FastAPI, db: Engine) -> None:
    add_person(db, "ana")
    limit = app.state.settings.signin_max_per_account
    for _ in range(limit):
        assert try_sign_in(TestClient(app), "ana", "wrong password!").status_code == 401
    # Even the right password is refused now, from anywhere, for this account only.
    throttled = try_sign_in(TestClient(app), "ana")
    assert throttled.status_code == 429 and 0 < int(throttled.headers["retry-after"]) <= 900
    assert "Too many failed sign-ins" in throttled.text
    # An unknown account is throttled the same way (a 429 does not reveal whether an account exists).
    for _ in range(limit):
        try_sign_in(TestClient(app), "nobody")
    assert try_sign_in(TestClient(app), "nobody").status_code == 429
    # The JSON password change counts against the same account.
    api = TestClient(app).post("/auth/change-password", json={"handle": "ana", "current_password": PASSWORD,
                                                       "new_password": "whatever long enough"})
    assert api.status_code == 429 and api.headers["retry-after"]


def test_failed_sign_ins_are_throttled_per_address_across_replicas(settings: Settings, db: Engine) -> None:
    """Two app instances on one database (two replicas) share the count; a success does not reset the address."""
    tight = settings.model_copy(update={"signin_max_per_address": 4, "signin_max_per_account": 100})
    one, two = create_app(tight, engine=db), create_app(tight, engine=db)
    add_person(db, "ana")
    for i, app in enumerate([one, two, one]):
        assert try_sign_in(TestClient(app), f"guess{i}", "x" * 12).status_code == 401
    assert try_sign_in(TestClient(two), "ana").status_code == 303  # a success: the address keeps its count
    assert try_sign_in(TestClient(one), "guess9", "x" * 12).status_code == 401  # the fourth failure
    refused = try_sign_in(TestClient(two), "ana")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    with Session(db) as session:
        assert throttle.failures(session, "address", "testclient") == 4


def test_cookies_are_secure_when_the_public_url_is_https(settings: Settings, db: Engine) -> None:
    app = create_app(settings.model_copy(update={"public_url": "https://watchtower.example"}), engine=db)
    add_person(db, "ana")
    browser = TestClient(app)
    form = browser.get("/auth/login")
    assert "Secure" in form.headers["set-cookie"]
    assert form.headers["strict-transport-security"].startswith("max-age=")
    token = form.text.split('name="csrf" value="')[1].split('"')[0]
    done = browser.post("/auth/login", data={"handle": "ana", "password": PASSWORD, "csrf": token},
                        headers={"Cookie": f"watchtower_signin={token}"}, follow_redirects=False)
    assert done.status_code == 303, done.text[:300]
    session_cookie = next(c for c in done.headers.get_list("set-cookie") if "session" in c)
    assert session_cookie.startswith("__Host-watchtower_session=")  # Secure, Path=/, no Domain: this origin only
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "Path=/" in session_cookie


def test_set_password_from_the_command_line(db: Engine) -> None:
    add_person(db, "ana", password=None)
    env = {"WATCHTOWER_DATABASE_URL": database_url(db), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "watchtower.cli", "user", "set-password", "ana"],
                         input="from standard input\n", capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert verify_password(_user(db, "ana").password_hash, "from standard input")
    short = subprocess.run([sys.executable, "-m", "watchtower.cli", "user", "set-password", "ana"],
                           input="short\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert short.returncode == 2 and "10 to 1024 characters" in short.stderr
    assert verify_password(_user(db, "ana").password_hash, "from standard input")  # unchanged
    unknown = subprocess.run([sys.executable, "-m", "watchtower.cli", "user", "set-password", "zed"],
                             input="long enough password\n", capture_output=True, text=True, env=env, cwd=ROOT,
                             timeout=120)
    assert unknown.returncode == 2 and "no user with handle 'zed'" in unknown.stderr
