"""Signing a TestClient in through the real forms, and reading the CSRF token a page gives its forms."""

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.engine import Engine
from sqlmodel import Session

from watchtower.auth.models import User
from watchtower.auth.passwords import hash_password

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def add_person(engine: Engine, handle: str, password: str | None = PASSWORD, active: bool = True,
               role: str = "admin") -> User:
    """A person row with the argon2 hash of `password` (as `watchtower user set-password` stores it); admin by
    default, so the access check lets them reach every page form and what is tested is the form's own check."""
    with Session(engine) as session:
        user = User(handle=handle, display_name=handle.capitalize(), active=active, role=role,
                    password_hash=hash_password(password) if password else None)
        session.add(user)
        session.commit()
        session.refresh(user)
        return user


def try_sign_in(client: TestClient, handle: str, password: str = PASSWORD, **form: str) -> Response:
    """GET the sign-in form (it sets the sign-in CSRF cookie), then POST it; the redirect is not followed."""
    page = client.get("/auth/login")
    token = CSRF.search(page.text)
    assert page.status_code == 200 and token is not None, page.text[:500]
    return client.post("/auth/login", data={"handle": handle, "password": password, "csrf": token.group(1)} | form,
                       follow_redirects=False)


def signed_in(app: FastAPI, handle: str, password: str = PASSWORD) -> TestClient:
    """A browser-like client (no bearer token) signed in as `handle`."""
    client = TestClient(app)
    response = try_sign_in(client, handle, password)
    assert response.status_code == 303, response.text[:500]
    return client


def page_csrf(client: TestClient, path: str = "/postmortems") -> str:
    """The CSRF token the page's forms carry for this client's session."""
    token = CSRF.search(client.get(path).text)
    assert token is not None
    return token.group(1)
