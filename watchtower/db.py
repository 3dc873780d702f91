"""Engine, sessions and schema migrations."""

import ast
import re
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

import watchtower.table_targets  # noqa: F401  (what foreign keys point at; watchtower.tables has every table)
from watchtower.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# A module-level `revision = ...` or `down_revision: str | None = ...` line of a migration file.
REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=(.*)$", re.MULTILINE)
WRITE_OPTION = "watchtower_writer"


def make_engine(url: str, *, sqlite_busy_timeout_s: float = 30) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout so writers queue instead of failing."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout_s})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy (below) emit BEGIN itself: pysqlite's own handling breaks SAVEPOINTs.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transaction is on disk before the 2xx goes out.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A writer takes the write lock up front, so it queues on busy_timeout instead of
            # failing with SQLITE_BUSY when its read snapshot went stale under a concurrent write.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def engine_for(settings: Settings) -> Engine:
    """The engine the settings describe."""
    return make_engine(settings.database_url, sqlite_busy_timeout_s=settings.sqlite_busy_timeout_s)


def writer(engine: Engine) -> Engine:
    """The same engine, marked so SQLite transactions on it start as writers (no-op elsewhere)."""
    return engine.execution_options(**{WRITE_OPTION: True})


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database) and load built-in data."""
    if applied_revisions(engine) != script_heads():
        # Alembic costs half a second to import: only when there is something to upgrade.
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    from postmortems.taxonomy import ensure_builtin

    with Session(writer(engine)) as session:
        ensure_builtin(session)
        session.commit()


def script_heads() -> set[str]:
    """The revisions no migration file revises: what `alembic upgrade head` leads to (read without Alembic)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in _revision_values(path.read_text()):
            if name == "revision":
                revisions.add(str(value))
            elif value is not None:
                revised.update([value] if isinstance(value, str) else value)
    return revisions - revised


def _revision_values(source: str) -> list[tuple[str, Any]]:
    """A migration's module-level `revision` and `down_revision` values, from their lines: parsing every file
    whole cost 30-250 ms of each start. A value that spans lines (a long merge tuple) gets the file parsed."""
    try:
        return [(m[1], ast.literal_eval(m[2].strip())) for m in REVISION_LINE.finditer(source)]
    except (ValueError, SyntaxError):
        return _parsed_revision_values(source)


def _parsed_revision_values(source: str) -> list[tuple[str, Any]]:
    """`revision` and `down_revision` assigned at the top level of the parsed module."""
    values: list[tuple[str, Any]] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)} & {"revision", "down_revision"}
            values += [(name, ast.literal_eval(node.value)) for name in sorted(names)]
    return values


def applied_revisions(engine: Engine) -> set[str]:
    """The revisions in the database's alembic_version table (empty for a new database)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return set()
        return {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
