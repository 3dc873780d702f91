"""guards: action items that add a detector to a monitor, and check runs that name their guard (the score and
reason of suggested tags, learned ones included, came with 0023)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("action_item") as batch:
        batch.add_column(sa.Column("guard", sa.JSON(), nullable=True))
    with op.batch_alter_table("check_run") as batch:
        batch.add_column(sa.Column("guard_item_id", sa.Integer(), nullable=True))
        batch.create_index("ix_check_run_guard_item_id", ["guard_item_id"])


def downgrade() -> None:
    with op.batch_alter_table("check_run") as batch:
        batch.drop_index("ix_check_run_guard_item_id")
        batch.drop_column("guard_item_id")
    with op.batch_alter_table("action_item") as batch:
        batch.drop_column("guard")
