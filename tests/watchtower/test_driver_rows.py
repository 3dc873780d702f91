"""driver_rows.insert_rows stores what the ORM stores for the same values (PostgreSQL: one JSON parameter
unpacked by json_to_recordset; SQLite: plain VALUES), and keeps ON CONFLICT and RETURNING's meaning."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from watchtower.auth.audit import insert_rows as insert_audit_rows
from watchtower.auth.models import AuditEntry
from watchtower.db import writer
from watchtower.events.keys import insert_key_rows
from watchtower.events.models import ServingEvent

AWKWARD = 'quote " backslash \\ tab \t newline \n é ✓ 😀 </script> \' %s ? $1'


def entries() -> list[dict[str, Any]]:
    """Audit rows with what JSON must escape, non-ASCII text, nested params, NULLs, and times at two offsets."""
    at = datetime(2026, 11, 29, 10, 0, 0, 123456, tzinfo=UTC)
    return [
        {"at": at, "actor": AWKWARD, "user_id": None, "token_id": 7, "method": "POST", "route": "/r/{x}",
         "path": "/r/" + AWKWARD, "params": {"nested": {"list": [1, 2.5, None, True], "text": AWKWARD}, "n": 3},
         "status": 200, "client": None},
        {"at": at.astimezone(timezone(timedelta(hours=-5))), "actor": "token:3:ci", "user_id": 2**31 - 1,
         "token_id": None, "method": "PATCH", "route": "/m", "path": "/m", "params": {}, "status": 503,
         "client": "2001:db8::1"},
        {"at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "actor": "a", "user_id": 1, "token_id": 1,
         "method": "DELETE", "route": "/d", "path": "/d", "params": {"x": "y"}, "status": 404, "client": "10.0.0.1"},
    ]


def stored(db: Engine, actors: set[str]) -> list[tuple[Any, ...]]:
    with Session(db) as session:
        rows = session.exec(select(AuditEntry).where(col(AuditEntry.actor).in_(actors))
                            .order_by(col(AuditEntry.id))).all()
        return [(r.at.astimezone(UTC) if r.at.tzinfo else r.at.replace(tzinfo=UTC), r.actor, r.user_id,
                 r.token_id, r.method, r.route, r.path, r.params, r.status, r.client) for r in rows]


def test_audit_rows_through_the_driver_read_back_as_the_orm_wrote_them(db: Engine) -> None:
    rows = entries()
    with Session(writer(db)) as session:
        for row in rows:
            session.add(AuditEntry(**row))
        session.commit()
    by_orm = stored(db, {r["actor"] for r in rows})
    with Session(writer(db)) as session:
        for row in rows:
            row["actor"] += "-driver"
        insert_audit_rows(session, rows)
        session.commit()
    by_driver = stored(db, {r["actor"] for r in rows})
    assert len(by_orm) == len(by_driver) == 3
    assert [(*r[:1], r[1] + "-driver", *r[2:]) for r in by_orm] == by_driver
    assert by_driver[2][0] == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)  # microseconds kept


def test_a_naive_time_is_refused_on_both_databases(db: Engine) -> None:
    rows = entries()
    rows[1]["at"] = datetime(2026, 1, 2, 3, 4, 5)  # no offset: which zone it meant is unknown
    with Session(writer(db)) as session:
        with pytest.raises(ValueError, match="naive"):
            insert_audit_rows(session, rows)
        session.rollback()
    assert stored(db, {r["actor"] for r in rows}) == []


def test_a_rolled_back_transaction_keeps_no_audit_row(db: Engine) -> None:
    with Session(writer(db)) as session:
        insert_audit_rows(session, entries())
        session.rollback()
    assert stored(db, {r["actor"] for r in entries()}) == []


def test_key_rows_skip_stored_ids_and_return_only_the_new_ones(db: Engine) -> None:
    model_id = 4242  # keys have no foreign key (ServingEvent)
    at = datetime(2026, 11, 29, 10, 0, 0, 654321, tzinfo=UTC)
    postgres = db.dialect.name == "postgresql"

    def insert(ids: list[str]) -> list[str]:
        with Session(writer(db)) as session:
            cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
            new = insert_key_rows(cursor, model_id, [(i, at, "v1", at + timedelta(seconds=1)) for i in ids],
                                  postgres)
            session.commit()
            return new

    assert sorted(insert(["a", AWKWARD, "c"])) == sorted(["a", AWKWARD, "c"])
    assert insert(["c", "d", AWKWARD]) == ["d"]
    assert insert([]) == []  # no statement at all (an empty VALUES list is no SQL)
    with Session(db) as session:
        events = session.exec(select(ServingEvent).where(ServingEvent.model_id == model_id)).all()
    assert sorted(e.event_id for e in events) == sorted(["a", AWKWARD, "c", "d"])
    for event in events:
        ts = event.ts if event.ts.tzinfo else event.ts.replace(tzinfo=UTC)
        received = event.received_at if event.received_at.tzinfo else event.received_at.replace(tzinfo=UTC)
        assert (ts, event.version, received) == (at, "v1", at + timedelta(seconds=1))
