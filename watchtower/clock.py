"""Time, in one place: aware UTC datetimes (SQLModel stores and returns them in UTC on both databases)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """An aware datetime converted to UTC; a naive one is taken as UTC already."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
