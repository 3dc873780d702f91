"""The audit log: who wrote what, when, from where. Rows are added by the access check (access.py) for every
write that reached the app, and by code that acts for a person outside a request of theirs."""

import ipaddress
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from fastapi import Request
from sqlmodel import Session, col, select

from watchtower import driver_rows
from watchtower.auth.models import AuditEntry
from watchtower.auth.principal import Principal
from watchtower.clock import utcnow

ANONYMOUS = "anonymous"  # an open route (sign-in, Slack's signed callbacks)


def record(session: Session, principal: Principal | None, method: str, route: str, path: str,
           params: dict[str, Any], status: int, client: str | None) -> AuditEntry:
    """Add one entry (flushed with the session, not committed)."""
    entry = AuditEntry(actor=principal.actor if principal else ANONYMOUS, user_id=principal.user_id if principal
                       else None, token_id=principal.token_id if principal else None, method=method,
                       route=route[:300], path=path[:2000], params=params, status=status,
                       client=client[:100] if client else None)
    session.add(entry)
    return entry


DRAFT = "audit_draft"  # the request state key of a write's Draft


@dataclass
class Draft:
    """A write's audit entry before its status is known. The event writer may take it over (`handed_over`):
    then the entry is inserted with the write's events, in the flush's transaction, and the access check
    records nothing after the response."""

    principal: Principal | None
    method: str
    route: str
    path: str
    params: dict[str, Any]
    client: str | None
    at: datetime = field(default_factory=utcnow)
    taken: bool = False

    def values(self, status: int, **extra: Any) -> dict[str, Any]:
        """The audit_log row, `extra` added to its params (e.g. how many events a batch held)."""
        principal = self.principal
        return {"at": self.at, "actor": principal.actor if principal else ANONYMOUS,
                "user_id": principal.user_id if principal else None,
                "token_id": principal.token_id if principal else None, "method": self.method,
                "route": self.route[:300], "path": self.path[:2000], "params": self.params | extra,
                "status": status, "client": self.client[:100] if self.client else None}


@contextmanager
def handed_over(request: Request, events: int) -> Iterator[dict[str, Any] | None]:
    """The audit row of an accepted events write (status 200, `events` in its params) for the event writer to
    insert with the events; None outside the access check. Should the block fail (a durable write not
    stored), the access check records the failure itself as for any write."""
    draft: Draft | None = request.scope.get("state", {}).get(DRAFT)
    if draft is None:
        yield None
        return
    draft.taken = True
    try:
        yield draft.values(200, events=events)
    except BaseException:
        draft.taken = False
        raise


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add Draft.values rows in one INSERT in the session's transaction (not committed)."""
    if rows:  # the event writer adds one per request: one statement on the driver's cursor (driver_rows.py)
        connection = session.connection()
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            insert_driver_rows(cursor, rows, connection.dialect.name == "postgresql")
        finally:
            cursor.close()


_COLUMNS = {"at": "time", "actor": "text", "user_id": "int", "token_id": "int", "method": "text", "route": "text",
            "path": "text", "params": "json", "status": "int", "client": "text"}


_values = itemgetter(*_COLUMNS)  # a row's values in _COLUMNS' order


def insert_driver_rows(cursor: Any, rows: Sequence[dict[str, Any]], postgres: bool) -> None:
    """Draft.values rows in one INSERT on a driver cursor, in its connection's transaction (none: no statement)."""
    driver_rows.insert_rows(cursor, "audit_log", _COLUMNS, list(map(_values, rows)), postgres)


@lru_cache(maxsize=8)
def _networks(trusted: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in trusted.split(",") if item.strip())


def _is_trusted(address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request, trusted_proxies: str) -> str | None:
    """The caller's address. X-Forwarded-For counts only when the peer is a trusted proxy: then the nearest
    address in it that is not one of our proxies (anyone can write the header, so untrusted hops are not read)."""
    peer = request.client.host if request.client else None
    networks = _networks(trusted_proxies)
    if peer is None or not networks or not _is_trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def search(session: Session, *, actor: str | None = None, since: datetime | None = None,
           until: datetime | None = None, method: str | None = None, path_prefix: str | None = None,
           status: int | None = None, before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """Entries newest first, filtered; `before_id` continues a page (keyset: ids only grow)."""
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    if until is not None:
        query = query.where(col(AuditEntry.at) < until)
    if method is not None:
        query = query.where(AuditEntry.method == method.upper())
    if path_prefix is not None:
        query = query.where(col(AuditEntry.path).startswith(path_prefix, autoescape=True))
    if status is not None:
        query = query.where(AuditEntry.status == status)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    return list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)).all())
