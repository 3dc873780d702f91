"""mergeable profiles: per event segment, per reference, and profiles posted from a data lake (issue 15)

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-28 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_segment") as batch:
        batch.add_column(sa.Column("profile", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("reference_data") as batch:
        batch.add_column(sa.Column("sketch", sa.LargeBinary(), nullable=True))
    op.create_table(
        "posted_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("end", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=False),
        sa.Column("reference", sa.Boolean(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_posted_profile_model_start", "posted_profile", ["model_id", "start"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_posted_profile_model_start", table_name="posted_profile")
    op.drop_table("posted_profile")
    with op.batch_alter_table("reference_data") as batch:
        batch.drop_column("sketch")
    with op.batch_alter_table("event_segment") as batch:
        batch.drop_column("profile")
