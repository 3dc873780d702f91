"""outbox claims: sending status owner and expiry, idempotency key, retry window, receiver's answer

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("result", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("first_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("claim_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # Messages already queued get a random key too (32 hex digits, like uuid4().hex in the model).
    random_key = ("md5(random()::text || clock_timestamp()::text || id::text)"
                  if op.get_bind().dialect.name == "postgresql" else "lower(hex(randomblob(16)))")
    op.execute(f"UPDATE outbox_message SET idempotency_key = {random_key}")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.alter_column("idempotency_key", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
                              nullable=False)
        batch_op.create_index(batch_op.f("ix_outbox_message_idempotency_key"), ["idempotency_key"], unique=True)
        batch_op.create_index(batch_op.f("ix_outbox_message_incident_id"), ["incident_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_incident_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_message_idempotency_key"))
        batch_op.drop_column("claim_expires_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("first_attempt_at")
        batch_op.drop_column("result")
        batch_op.drop_column("idempotency_key")
    # Messages caught mid-send go back to pending: the older code knows no `sending`.
    op.execute("UPDATE outbox_message SET status = 'pending' WHERE status = 'sending'")
