"""response policies, per-pass policy decisions, incident grouping keys

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-28 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "response_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("updated_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id"),
    )
    op.create_table(
        "policy_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("verdict", sa.Boolean(), nullable=False),
        sa.Column("matched", sa.JSON(), nullable=False),
        sa.Column("fired", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("severity", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("policy_scope", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.ForeignKeyConstraint(["monitor_id"], ["monitor.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_policy_decision_model_id", "policy_decision", ["model_id"])
    op.create_index("ix_policy_decision_incident_id", "policy_decision", ["incident_id"])
    op.create_index("ix_policy_decision_monitor_at", "policy_decision", ["monitor_id", "at"])
    with op.batch_alter_table("check_run") as batch:
        batch.add_column(sa.Column("decision_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_check_run_decision_id", "policy_decision", ["decision_id"], ["id"])
        batch.create_index("ix_check_run_decision_id", ["decision_id"])
    # Plain ADD COLUMN: rebuilding incident on SQLite would drop the triggers of its full-text index.
    op.add_column("incident", sa.Column("group_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    # Incidents opened before policies were grouped by model and monitor: say so in the new key format.
    op.execute("UPDATE incident SET group_key = 'model:' || model_id || ':monitor:' || monitor_id "
               "WHERE model_id IS NOT NULL AND monitor_id IS NOT NULL AND source = 'detector'")
    op.execute("UPDATE incident SET open_key = group_key WHERE open_key IS NOT NULL")


def downgrade() -> None:
    op.drop_column("incident", "group_key")
    with op.batch_alter_table("check_run") as batch:
        batch.drop_index("ix_check_run_decision_id")
        batch.drop_constraint("fk_check_run_decision_id", type_="foreignkey")
        batch.drop_column("decision_id")
    op.drop_table("policy_decision")
    op.drop_table("response_policy")
