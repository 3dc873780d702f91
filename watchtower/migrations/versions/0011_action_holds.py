"""action holds: operator decisions (restore, resume) that hold automatic swap or pause

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("released_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("released_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.Column("alerted_severity", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("alerted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_action_hold_incident_id", "action_hold", ["incident_id"])
    op.create_index("ix_action_hold_model_action", "action_hold", ["model_id", "action"])


def downgrade() -> None:
    op.drop_index("ix_action_hold_model_action", table_name="action_hold")
    op.drop_index("ix_action_hold_incident_id", table_name="action_hold")
    op.drop_table("action_hold")
