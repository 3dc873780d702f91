"""The people Watchtower knows, their API tokens and the audit log of what they did."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow

HANDLE = r"^[a-z0-9][a-z0-9._-]{0,63}$"  # a person's handle, in bodies and paths alike


class User(SQLModel, table=True):
    """One person. `handle` is how they are named everywhere (authors, rotations, overrides)."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL
    id: int | None = Field(default=None, primary_key=True)
    handle: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320, unique=True)
    slack_user_id: str | None = Field(default=None, max_length=32, unique=True)
    time_zone: str = Field(default="UTC", max_length=64)  # IANA name: shifts and pages are shown in it
    role: str = Field(default="viewer", max_length=16)  # watchtower.auth.roles.Role
    active: bool = True
    # argon2id hash (argon2-cffi's encoded string); None: no password, so no page sign-in (see auth/passwords.py)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A bearer token: a person's (user_id) or a pipeline's service token (pipeline_id). Only its hash is kept."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)  # sha256 hex of the whole token
    prefix: str = Field(max_length=16)  # the token's first characters, to tell tokens apart in lists
    name: str = Field(max_length=100)
    role: str = Field(max_length=16)  # capped by the owner's current role when used
    user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    pipeline_id: int | None = Field(default=None, foreign_key="pipeline.id", index=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class AuditEntry(SQLModel, table=True):
    """One write: who (actor), what (method, route, params, status), when and from where."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=200, index=True)  # a handle, "token:<id>:<name>", "pipeline:<name>", "api-token"
    user_id: int | None = Field(default=None, index=True)  # no foreign key: the log outlives what it names
    token_id: int | None = None
    method: str = Field(max_length=10)
    route: str = Field(max_length=300)  # the route template, e.g. /incidents/{incident_id}/notes
    path: str = Field(max_length=2000)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: int
    client: str | None = Field(default=None, max_length=100)
