"""PostgreSQL keeps a segment's bytes and profile out of line without trying to compress them

A segment kept in the database (`event_segment.parquet`, the default store on PostgreSQL) is zstd Parquet, which
pglz cannot shrink, and its profile is sorted floats, which it shrinks by about a quarter; yet PostgreSQL tried
on every INSERT, on the ingest's critical path: 5.6-7.8 ms for a 264 KB segment of 5,000 events against
1.1-1.8 ms with STORAGE EXTERNAL (same size), 3.7-6.4 ms against 0.9-1.3 ms for its 156 KB profile (stored 36%
larger, read back faster). SQLite stores blobs as they are: nothing to do there.

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-29 00:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("parquet", "profile")


def upgrade() -> None:
    _storage("EXTERNAL")  # out of line, uncompressed: for rows written from now on (existing rows stay as they are)


def downgrade() -> None:
    _storage("EXTENDED")  # PostgreSQL's default for bytea


def _storage(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"ALTER TABLE event_segment ALTER COLUMN {column} SET STORAGE {kind}")
