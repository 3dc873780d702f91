"""reference profile

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 11:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing references get no profile: detectors then profile the stored frame on each pass.
    with op.batch_alter_table("reference_data", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reference_data", schema=None) as batch_op:
        batch_op.drop_column("profile")
