"""Throttling of failed sign-ins per account and per client address, counted in the database so every replica
sees the same numbers. Unknown accounts are counted like known ones: a 429 does not tell whether one exists."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from watchtower.auth.session_models import SignInFailure
from watchtower.settings import Settings


class Throttled(Exception):
    """Too many failed sign-ins; try again after `retry_after_s` seconds."""

    def __init__(self, scope: str, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins for this {scope}; try again in {retry_after_s} s")
        self.scope, self.retry_after_s = scope, retry_after_s


@dataclass(frozen=True)
class Attempt:
    """Who tries to sign in, and from where."""

    handle: str
    address: str

    def keys(self, settings: Settings) -> list[tuple[str, str, int]]:
        """(scope, key, limit) for each counter this attempt counts against."""
        return [("account", self.handle.strip().lower()[:128], settings.signin_max_per_account),
                ("address", self.address[:128], settings.signin_max_per_address)]


def check(session: Session, attempt: Attempt, settings: Settings, now: datetime) -> None:
    """Raise Throttled if the account or the address has used up its failures in the window."""
    since = now - timedelta(seconds=settings.signin_window_s)
    for scope, key, limit in attempt.keys(settings):
        recent = session.exec(select(SignInFailure.at).where(
            SignInFailure.scope == scope, SignInFailure.key == key, col(SignInFailure.at) > since)
            .order_by(col(SignInFailure.at).desc()).limit(limit)).all()
        if len(recent) >= limit:  # free again when the limit-th newest failure leaves the window
            wait = (recent[-1] + timedelta(seconds=settings.signin_window_s) - now).total_seconds()
            raise Throttled(scope, max(1, math.ceil(wait)))


def record_failure(session: Session, attempt: Attempt, settings: Settings, now: datetime) -> None:
    """Count a failed sign-in against both counters, and forget failures older than the window."""
    session.execute(delete(SignInFailure).where(
        col(SignInFailure.at) < now - timedelta(seconds=settings.signin_window_s)))
    for scope, key, _ in attempt.keys(settings):
        session.add(SignInFailure(scope=scope, key=key, at=now))
    session.flush()


def clear_account(session: Session, attempt: Attempt, settings: Settings) -> None:
    """After a successful sign-in the account starts afresh (the address keeps its count)."""
    scope, key, _ = attempt.keys(settings)[0]
    session.execute(delete(SignInFailure).where(col(SignInFailure.scope) == scope, col(SignInFailure.key) == key))


def failures(session: Session, scope: str, key: str) -> int:
    """How many failures are stored for a counter (for tests and operators)."""
    return session.exec(select(func.count()).select_from(SignInFailure)
                        .where(SignInFailure.scope == scope, SignInFailure.key == key)).one()
