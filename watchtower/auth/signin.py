"""Signing in and setting passwords: the checks every way in shares (page form, JSON API, CLI)."""

from datetime import datetime

from sqlmodel import Session, select

from watchtower.auth import throttle
from watchtower.auth.models import User
from watchtower.auth.passwords import check_strength, hash_password, needs_rehash, verify_password
from watchtower.auth.sessions import end_sessions_of
from watchtower.settings import Settings

WRONG = "wrong username or password"  # the same answer whether the account exists or not


def authenticate(session: Session, handle: str, password: str, address: str, settings: Settings,
                 now: datetime) -> User | None:
    """The active person with this handle and password, or None (the failure is counted; the caller commits).

    Throttled is raised before any password is checked. An unknown, deactivated or password-less account is
    verified against a dummy hash, so neither the answer nor its timing tells whether the account exists.
    """
    attempt = throttle.Attempt(handle, address)
    throttle.check(session, attempt, settings, now)
    user = session.exec(select(User).where(User.handle == handle.strip().lower())).first()
    stored = user.password_hash if user is not None and user.active else None
    if user is None or not verify_password(stored, password):
        throttle.record_failure(session, attempt, settings, now)
        return None
    throttle.clear_account(session, attempt, settings)
    if stored and needs_rehash(stored):  # parameters got stronger since this hash was made
        user.password_hash = hash_password(password)
        session.add(user)
    return user


def set_password(session: Session, user: User, password: str, now: datetime, field: str = "password") -> None:
    """Store a new password's hash and end every session of the person (flushed, not committed); Invalid
    (naming `field`) for a password too short or too long."""
    assert user.id is not None
    check_strength(password, field)
    user.password_hash = hash_password(password)
    user.updated_at = now
    session.add(user)
    end_sessions_of(session, user.id)
    session.flush()


def client_address(host: str | None) -> str:
    """The address failures are counted against (behind a proxy, uvicorn's --forwarded-allow-ips sets it)."""
    return host or "unknown"
