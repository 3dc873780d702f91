"""`watchtower user add`: the first admin (or anyone) from the command line, with a first token."""

from sqlalchemy.engine import Engine
from sqlmodel import Session

from watchtower.auth import tokens
from watchtower.auth.roles import Role
from watchtower.auth.users import UserCreate, create_user


def add_user(engine: Engine, handle: str, role: Role, display_name: str | None = None) -> str:
    """Create the person and a token with their role; returns the token (its only copy). Raises Conflict
    when the handle is taken, ValidationError for a bad handle."""
    body = UserCreate(handle=handle, display_name=display_name or handle, role=role)
    with Session(engine) as session:
        user = create_user(session, body)
        _, secret = tokens.issue(session, name="first token", role=role, created_by="cli", user=user)
        session.commit()
    return secret
