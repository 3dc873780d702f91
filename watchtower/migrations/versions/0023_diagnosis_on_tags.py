"""diagnosis: each suggested tag keeps its confidence score, its reason and the signature that produced it

Revision ID: 0023
Revises: 0017
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incident_tag") as batch:
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incident_tag") as batch:
        batch.drop_column("signature")
        batch.drop_column("reason")
        batch.drop_column("score")
