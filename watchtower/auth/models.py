"""The people Watchtower knows: who is on call, who answers from Slack, who did what."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class User(SQLModel, table=True):
    """One person. `handle` is how they are named everywhere (authors, rotations, overrides)."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL
    id: int | None = Field(default=None, primary_key=True)
    handle: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320, unique=True)
    slack_user_id: str | None = Field(default=None, max_length=32, unique=True)
    time_zone: str = Field(default="UTC", max_length=64)  # IANA name: shifts and pages are shown in it
    active: bool = True
    # argon2id hash (argon2-cffi's encoded string); None: no password, so no page sign-in (see auth/passwords.py)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
