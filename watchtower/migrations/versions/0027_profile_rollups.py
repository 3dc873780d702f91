"""profile rollups: the merged profile of each profile bucket's segments (a cache for windows over many segments),
and an index that answers the newest reference's id and time without reading its Parquet

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-28 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profile_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("bucket_s", sa.Integer(), nullable=False),
        sa.Column("segments", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("n_segments", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "bucket_start", "bucket_s"),
    )
    op.create_index("ix_reference_data_model_id_created", "reference_data", ["model_id", "id", "created_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_reference_data_model_id_created", table_name="reference_data")
    op.drop_table("profile_rollup")
