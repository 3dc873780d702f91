"""Leader election through one lease row, as the replica notes recommend over advisory locks.

A row works through connection poolers (PgBouncer in transaction mode breaks session advisory locks) and
on SQLite. The holder renews it every few seconds; once it has expired anyone may take it over, which bumps
the epoch. Every job slot is claimed under the holder's epoch (see `slots.claim`), so a leader that lost
its lease without noticing (a long GC pause, a partition) cannot run anything: its claims fail.
"""

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from watchtower.db import writer

LEASE = "scheduler"


def hold(engine: Engine, holder: str, epoch: int | None, *, ttl_s: float, now: float) -> int | None:
    """Renew `holder`'s lease or take over an expired one; return the epoch held, or None if another leads."""
    expires = now + ttl_s
    with writer(engine).begin() as conn:
        if epoch is not None and _execute(conn, "UPDATE scheduler_lease SET expires_at = :exp, renewed_at = :now "
                                          "WHERE name = :name AND holder = :holder AND epoch = :epoch",
                                          exp=expires, now=now, holder=holder, epoch=epoch):
            return epoch
        if _execute(conn, "INSERT INTO scheduler_lease (name, holder, epoch, expires_at, renewed_at) "
                          "VALUES (:name, :holder, 1, :exp, :now) ON CONFLICT (name) DO NOTHING",
                    exp=expires, now=now, holder=holder):
            return 1
        # On PostgreSQL a concurrent taker blocks on the row and re-checks the WHERE after the winner commits.
        if _execute(conn, "UPDATE scheduler_lease SET holder = :holder, epoch = epoch + 1, expires_at = :exp, "
                          "renewed_at = :now WHERE name = :name AND expires_at <= :now",
                    exp=expires, now=now, holder=holder):
            taken: int = conn.execute(text("SELECT epoch FROM scheduler_lease WHERE name = :name"),
                                      {"name": LEASE}).scalar_one()
            return taken
    return None


def release(engine: Engine, holder: str, epoch: int, *, now: float) -> None:
    """Give the lease up at shutdown, so a follower takes over at its next renewal instead of after the TTL."""
    with writer(engine).begin() as conn:
        _execute(conn, "UPDATE scheduler_lease SET expires_at = :now WHERE name = :name AND holder = :holder "
                       "AND epoch = :epoch", now=now, holder=holder, epoch=epoch)


def _execute(conn: Connection, sql: str, **params: object) -> bool:
    """Run one statement on the lease row; True if it changed a row."""
    return bool(conn.execute(text(sql), {"name": LEASE, **params}).rowcount)
