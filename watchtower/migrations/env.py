"""Alembic environment: runs on the connection watchtower.db.migrate passes in, or on WATCHTOWER_DATABASE_URL."""

from alembic import context
from sqlmodel import SQLModel

import watchtower.tables  # noqa: F401

target_metadata = SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        from watchtower.db import make_engine
        from watchtower.settings import Settings

        with make_engine(Settings().database_url).begin() as connection:
            _run(connection)
    else:
        _run(connection)


# PostgreSQL-only indexes the migrations create in SQL; the models cannot declare them for one dialect only.
SQL_ONLY_INDEXES = ("ix_incident_document_tsv", "ix_incident_document_tags")


def _ours(name: str | None, kind: str, _parent: object) -> bool:
    """Objects Alembic must not try to drop: APScheduler's job table and the search indexes made in SQL."""
    if kind == "table":
        return not (name == "apscheduler_jobs" or (name or "").startswith("incident_fts"))
    return not ((kind == "column" and name == "tsv") or (kind == "index" and name in SQL_ONLY_INDEXES))


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
