"""When to try a failed message again: the receiver's Retry-After, or capped exponential backoff."""

from datetime import datetime
from email.utils import parsedate_to_datetime

from watchtower.clock import to_utc

BASE_S = 5.0
# A Retry-After further out than this is taken as this: a receiver's typo (or a day-long maintenance
# window) must not park an alert for longer than an hour between attempts.
MAX_RETRY_AFTER_S = 3600.0


def backoff_s(attempts: int, cap_s: float) -> float:
    """5 s, 10 s, 20 s... after the 1st, 2nd, 3rd... attempt, never more than `cap_s`."""
    return min(BASE_S * 2.0 ** max(attempts - 1, 0), cap_s)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date), or None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((to_utc(when) - now).total_seconds(), 0.0)


def retry_delay_s(attempts: int, retry_after_s: float | None, cap_s: float) -> float:
    """The wait before the next attempt: Retry-After when given (at least the base, at most an hour), else backoff."""
    if retry_after_s is not None:
        return min(max(retry_after_s, BASE_S), MAX_RETRY_AFTER_S)
    return backoff_s(attempts, cap_s)
