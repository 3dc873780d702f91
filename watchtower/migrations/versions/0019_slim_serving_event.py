"""slim serving_event to the idempotency key: features, prediction, latency and error live in segments

Revision ID: 0019
Revises: 0017
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every event since 0004 has its features, prediction, latency and error in its segment (0004 moved the older
# features there and emptied the column); the copies in these columns were read by nothing.
DROPPED = ("features", "prediction", "latency_ms", "error")


def upgrade() -> None:
    with op.batch_alter_table("serving_event", schema=None) as batch_op:
        for name in DROPPED:
            batch_op.drop_column(name)


def downgrade() -> None:
    # The columns come back empty: their values stay in the segments, where every reader takes them from.
    with op.batch_alter_table("serving_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("features", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("prediction", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("latency_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
