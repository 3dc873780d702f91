"""model log mode: a model's prediction logging mode (durable | async; null follows WATCHTOWER_LOG_MODE)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("monitored_model") as batch:
        batch.add_column(sa.Column("log_mode", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitored_model") as batch:
        batch.drop_column("log_mode")
