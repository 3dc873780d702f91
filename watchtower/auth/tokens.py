"""API tokens: `wt_` + 256 random bits, shown once; the database keeps only their sha256.

A plain (unsalted, fast) hash is enough here: the token is random and long, so there is nothing to guess from
its hash, and an index lookup by hash is how a request is authenticated.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from watchtower.auth.models import ApiToken, User
from watchtower.auth.roles import Role
from watchtower.registry.models import Pipeline

PREFIX = "wt_"  # recognisable, so secret scanners (and people) can spot a leaked token
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


def new_secret() -> str:
    """A fresh token: the prefix and 32 random bytes, URL-safe."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What the database stores and looks tokens up by."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(session: Session, *, name: str, role: Role, created_by: str, user: User | None = None,
          pipeline: Pipeline | None = None, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Store a new token for a person or a pipeline (flushed, not committed); returns it and its only copy."""
    secret = new_secret()
    token = ApiToken(token_hash=digest(secret), prefix=secret[:10], name=name, role=role.value,
                     user_id=user.id if user else None, pipeline_id=pipeline.id if pipeline else None,
                     created_by=created_by, expires_at=expires_at)
    session.add(token)
    session.flush()
    return token, secret


def is_live(token: ApiToken, now: datetime) -> bool:
    """Neither revoked nor expired."""
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def find(session: Session, secret: str, now: datetime) -> ApiToken | None:
    """The live token with this secret, or None (unknown, revoked or expired)."""
    if not secret.startswith(PREFIX):
        return None
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == digest(secret))).first()
    return token if token is not None and is_live(token, now) else None


def touch(session: Session, token: ApiToken, now: datetime) -> None:
    """Record the use, at most once a minute per token (one conditional UPDATE, so replicas cannot race)."""
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    session.execute(update(ApiToken).where(
        col(ApiToken.id) == token.id,
        or_(col(ApiToken.last_used_at).is_(None), col(ApiToken.last_used_at) < now - TOUCH_EVERY),
    ).values(last_used_at=now))
    session.commit()


def revoke(session: Session, token: ApiToken, now: datetime) -> None:
    """End the token for good (flushed, not committed); revoking twice keeps the first time."""
    if token.revoked_at is None:
        token.revoked_at = now
        session.add(token)
        session.flush()
