"""Tables of page sign-in: server-side sessions and failed sign-in attempts (shared by every replica)."""

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class WebSession(SQLModel, table=True):
    """One signed-in browser. Only a SHA-256 of the session id is stored: a database leak signs nobody in."""

    __tablename__ = "web_session"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    address: str = Field(default="", max_length=64)  # where it was started from, for people reviewing sessions


class SignInFailure(SQLModel, table=True):
    """One failed sign-in, counted per account and per client address within the throttle window."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (Index("ix_sign_in_failure_scope_key_at", "scope", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16)  # "account" or "address"
    key: str = Field(max_length=128)  # the handle tried (lower-cased) or the client address
    at: datetime = Field(default_factory=utcnow, index=True)
