"""escalation: policies, per-model routes, and each incident's frozen escalation chain and state

Revision ID: 0017
Revises: 0015
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_escalation_policy_name", "escalation_policy", ["name"], unique=True)
    op.create_table(
        "escalation_route",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.ForeignKeyConstraint(["policy_id"], ["escalation_policy.id"]),
        sa.PrimaryKeyConstraint("model_id"),
    )
    op.create_index("ix_escalation_route_policy_id", "escalation_route", ["policy_id"], unique=False)
    op.create_table(
        "incident_escalation",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("policy", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("repeats_done", sa.Integer(), nullable=False),
        sa.Column("next_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("acked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    op.create_index("ix_incident_escalation_state", "incident_escalation", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incident_escalation_state", table_name="incident_escalation")
    op.drop_table("incident_escalation")
    op.drop_index("ix_escalation_route_policy_id", table_name="escalation_route")
    op.drop_table("escalation_route")
    op.drop_index("ix_escalation_policy_name", table_name="escalation_policy")
    op.drop_table("escalation_policy")
