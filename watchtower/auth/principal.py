"""Who is asking: a person (by session cookie or personal token), a pipeline's service token, or the shared
WATCHTOWER_API_TOKEN; and how their name is recorded as an author."""

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel
from sqlmodel import Session

from watchtower.auth import tokens
from watchtower.auth.models import User
from watchtower.auth.roles import Role, lowest
from watchtower.registry.models import Pipeline
from watchtower.settings import Settings

API_TOKEN = "api-token"  # the shared WATCHTOWER_API_TOKEN: an admin, for existing setups and the demo


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `role` is None for a pipeline token (it has a scope, not a role)."""

    actor: str  # as the audit log names it: a handle, "pipeline:<name>" or "api-token"
    role: Role | None
    handle: str | None = None  # the person behind it
    user_id: int | None = None
    token_id: int | None = None
    pipeline_id: int | None = None

    def allows(self, needed: Role) -> bool:
        """Whether this caller has at least `needed`."""
        return self.role is not None and self.role.allows(needed)


SHARED = Principal(actor=API_TOKEN, role=Role.admin)


def cookie_user(request: Request, session: Session) -> User | None:
    """The person signed in on the pages (a server-side session: logout, deactivation and a password change end
    it), or None. The one place the access check reads the page session."""
    from watchtower.auth.sessions import session_user

    return session_user(request, session)


def person(user: User, token_id: int | None = None, token_role: Role | None = None) -> Principal | None:
    """A person's principal (capped by their token's role), or None when they are deactivated."""
    if not user.active:
        return None
    role = Role(user.role) if token_role is None else lowest(Role(user.role), token_role)
    return Principal(actor=user.handle, role=role, handle=user.handle, user_id=user.id, token_id=token_id)


def shared_token(settings: Settings, secret: str) -> Principal | None:
    """The shared WATCHTOWER_API_TOKEN's principal if `secret` is it (no database needed), else None."""
    shared = settings.api_token
    if shared is not None and secrets.compare_digest(secret.encode(), shared.get_secret_value().encode()):
        return SHARED
    return None


def from_bearer(session: Session, settings: Settings, secret: str, now: datetime) -> Principal | None:
    """The principal a bearer token stands for, or None when it is unknown, expired, revoked or orphaned."""
    if (principal := shared_token(settings, secret)) is not None:
        return principal
    token = tokens.find(session, secret, now)
    if token is None:
        return None
    found: Principal | None = None
    if token.pipeline_id is not None:
        pipeline = session.get(Pipeline, token.pipeline_id)
        if pipeline is not None:
            found = Principal(actor=f"pipeline:{pipeline.name}", role=None, token_id=token.id,
                              pipeline_id=pipeline.id)
    elif token.user_id is not None:
        owner = session.get(User, token.user_id)
        found = person(owner, token.id, Role(token.role)) if owner is not None else None
    if found is not None:
        tokens.touch(session, token, now)
    return found


def bearer_secret(request: Request) -> str | None:
    """The secret of an `Authorization: Bearer ...` header (None: no such header, or an empty secret)."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


def resolve(request: Request, session: Session, settings: Settings, now: datetime) -> Principal | None:
    """The caller: a bearer token wins over the session cookie; None when neither authenticates."""
    secret = bearer_secret(request)
    if secret is not None:
        return from_bearer(session, settings, secret, now)
    user = cookie_user(request, session)
    return person(user) if user is not None else None


def author_for(principal: Principal | None, claimed: str) -> str:
    """The author to record for a human action.

    A person is recorded as themselves, whatever the body says; an admin or the shared API token may act for
    someone else (an integration relaying who clicked), so their body `author` is kept.
    """
    if principal is None or principal.handle is None or principal.allows(Role.admin):
        return claimed
    return principal.handle


Body = TypeVar("Body", bound=BaseModel)


def attributed(body: Body, principal: Principal | None, field: str = "author") -> Body:
    """The body with its author field set as `author_for` decides."""
    return body.model_copy(update={field: author_for(principal, getattr(body, field))})
