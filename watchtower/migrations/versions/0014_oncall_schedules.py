"""on-call schedules: schedules, rotation layers with ordered participants, overrides

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("time_zone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_schedule_name", "schedule", ["name"], unique=True)
    op.create_table(
        "rotation_layer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("shift_length", sa.Integer(), nullable=False),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("handoff", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("restrictions", sa.JSON(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedule.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "name"),
        sa.UniqueConstraint("schedule_id", "priority"),
    )
    op.create_index("ix_rotation_layer_schedule_id", "rotation_layer", ["schedule_id"], unique=False)
    op.create_table(
        "rotation_participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["layer_id"], ["rotation_layer.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("layer_id", "position"),
    )
    op.create_index("ix_rotation_participant_layer_id", "rotation_participant", ["layer_id"], unique=False)
    op.create_index("ix_rotation_participant_user_id", "rotation_participant", ["user_id"], unique=False)
    op.create_table(
        "schedule_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("replaces_user_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ends_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["replaces_user_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedule.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_schedule_override_ends_at", "schedule_override", ["ends_at"], unique=False)
    op.create_index("ix_schedule_override_schedule_id", "schedule_override", ["schedule_id"], unique=False)
    op.create_index("ix_schedule_override_user_id", "schedule_override", ["user_id"], unique=False)


def downgrade() -> None:
    for index, table in [("ix_schedule_override_user_id", "schedule_override"),
                         ("ix_schedule_override_schedule_id", "schedule_override"),
                         ("ix_schedule_override_ends_at", "schedule_override")]:
        op.drop_index(index, table_name=table)
    op.drop_table("schedule_override")
    op.drop_index("ix_rotation_participant_user_id", table_name="rotation_participant")
    op.drop_index("ix_rotation_participant_layer_id", table_name="rotation_participant")
    op.drop_table("rotation_participant")
    op.drop_index("ix_rotation_layer_schedule_id", table_name="rotation_layer")
    op.drop_table("rotation_layer")
    op.drop_index("ix_schedule_name", table_name="schedule")
    op.drop_table("schedule")
