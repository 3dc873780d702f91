"""profile mode: a monitor's mode (auto | exact | profile), and each check result's mode and note

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-28 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill the rows already stored: every earlier monitor was "auto" in effect (no window was
    # profiled) and every earlier result was exact.
    with op.batch_alter_table("monitor") as batch:
        batch.add_column(sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
                                   server_default="auto"))
    with op.batch_alter_table("check_result") as batch:
        batch.add_column(sa.Column("mode", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False,
                                   server_default="exact"))
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("check_result") as batch:
        batch.drop_column("note")
        batch.drop_column("mode")
    with op.batch_alter_table("monitor") as batch:
        batch.drop_column("mode")
