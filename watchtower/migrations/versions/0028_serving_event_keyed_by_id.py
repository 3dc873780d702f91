"""serving_event keyed by (model_id, event_id): no surrogate id, no foreign key to monitored_model

Every batch of events writes one row here per event (the idempotency key). Nothing references the surrogate id,
and models are archived, never deleted, so the foreign key guarded nothing, yet PostgreSQL checked it with a
trigger per inserted row: with the id's sequence and second unique index, about 45% of the key COPY's time.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-28 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "model_id, event_id, ts, version, received_at"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        inspector = sa.inspect(bind)
        for fk in inspector.get_foreign_keys("serving_event"):
            op.drop_constraint(fk["name"], "serving_event", type_="foreignkey")
        unique = next(u["name"] for u in inspector.get_unique_constraints("serving_event")
                      if u["column_names"] == ["model_id", "event_id"])
        op.drop_column("serving_event", "id")  # its primary key and sequence go with it
        op.drop_constraint(unique, "serving_event", type_="unique")  # its index is rebuilt as the primary key
        op.create_primary_key("serving_event_pkey", "serving_event", ["model_id", "event_id"])
        return
    _rebuild("model_id INTEGER NOT NULL, event_id VARCHAR(200) NOT NULL, ts DATETIME NOT NULL, "
             "version VARCHAR(100), received_at DATETIME NOT NULL, PRIMARY KEY (model_id, event_id)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint("serving_event_pkey", "serving_event", type_="primary")
        op.execute("ALTER TABLE serving_event ADD COLUMN id SERIAL PRIMARY KEY")
        op.create_unique_constraint("serving_event_model_id_event_id_key", "serving_event", ["model_id", "event_id"])
        op.create_foreign_key("serving_event_model_id_fkey", "serving_event", "monitored_model", ["model_id"], ["id"])
        return
    _rebuild("id INTEGER NOT NULL PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES monitored_model (id), "
             "event_id VARCHAR(200) NOT NULL, ts DATETIME NOT NULL, version VARCHAR(100), "
             "received_at DATETIME NOT NULL, UNIQUE (model_id, event_id)")


def _rebuild(definition: str) -> None:
    """SQLite alters no key in place: a new table of this definition takes the rows (as batch mode would)."""
    op.execute(f"CREATE TABLE _serving_event_new ({definition})")
    op.execute(f"INSERT INTO _serving_event_new ({COLUMNS}) SELECT {COLUMNS} FROM serving_event")
    op.execute("DROP TABLE serving_event")
    op.execute("ALTER TABLE _serving_event_new RENAME TO serving_event")
    op.create_index("ix_serving_event_model_ts", "serving_event", ["model_id", "ts"], unique=False)
