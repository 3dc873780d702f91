"""segment store: event segments as Parquet files in a directory or object store, the database holding the
manifest (path, bytes, retired_at); the "database" store keeps today's bytes in `parquet`, now nullable

Revision ID: 0020
Revises: 0017
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_segment") as batch:
        batch.add_column(sa.Column("n_bytes", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True))
        batch.add_column(sa.Column("retired_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.alter_column("parquet", existing_type=sa.LargeBinary(), nullable=True)
    op.execute("UPDATE event_segment SET n_bytes = length(parquet)")


def downgrade() -> None:
    # Segments that live only as files cannot go back into the database: refuse rather than lose them.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM event_segment WHERE parquet IS NULL")).scalar():
        raise RuntimeError("event segments stored as files: read them back into the database before downgrading")
    op.execute("DELETE FROM event_segment WHERE retired_at IS NOT NULL")
    with op.batch_alter_table("event_segment") as batch:
        batch.alter_column("parquet", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("retired_at")
        batch.drop_column("path")
        batch.drop_column("n_bytes")
