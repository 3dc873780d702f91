"""schema per model version, reference history, re-profiled monitors, archived models; search text kept with
its angle brackets

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL's parser takes `<...>` for markup and drops it; the index sees angle brackets as spaces (as
# FTS5 does anyway), so incident_document can keep the text as written and snippets can quote it.
TSV = ("setweight(to_tsvector('english', translate(title, '<>', '  ')), 'A') || "
       "setweight(to_tsvector('english', translate(body, '<>', '  ')), 'B')")
TSV_BEFORE = "setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')"


def _reference_table(unique: bool) -> sa.Table:
    """reference_data as batch mode rebuilds it on SQLite, with or without model_id's unique constraint."""
    return sa.Table(
        "reference_data", sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("monitored_model.id"), nullable=False, unique=unique),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("parquet", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=True),
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # Archived models: plain ADD COLUMN (nullable), so SQLite does not rebuild a table many others reference.
    op.add_column("monitored_model", sa.Column("archived_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column("monitored_model", sa.Column("archived_by", sqlmodel.sql.sqltypes.AutoString(length=200),
                                               nullable=True))
    op.add_column("monitored_model", sa.Column("archived_reason", sqlmodel.sql.sqltypes.AutoString(length=2000),
                                               nullable=True))

    op.add_column("monitor", sa.Column("reprofiled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    # Each version records the schema it was registered with: existing ones get their model's.
    op.add_column("model_version", sa.Column("features", sa.JSON(), nullable=True))
    op.add_column("model_version", sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.execute("UPDATE model_version SET features = (SELECT m.features FROM monitored_model AS m "
               "WHERE m.id = model_version.model_id), target = (SELECT m.target FROM monitored_model AS m "
               "WHERE m.id = model_version.model_id)")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.alter_column("features", existing_type=sa.JSON(), nullable=False)

    # Several references per model: the newest serves, the older ones are history.
    if postgres:
        op.drop_constraint("reference_data_model_id_key", "reference_data", type_="unique")
    else:
        # Rebuilt from a definition without the constraint (it has no name to drop on SQLite).
        with op.batch_alter_table("reference_data", recreate="always", copy_from=_reference_table(False)):
            pass
    op.create_index("ix_reference_data_model_id", "reference_data", ["model_id"], unique=False)

    if postgres:
        _regenerate_tsv(TSV)


def _regenerate_tsv(expression: str) -> None:
    op.execute("DROP INDEX ix_incident_document_tsv")
    op.execute("ALTER TABLE incident_document DROP COLUMN tsv")
    op.execute(f"ALTER TABLE incident_document ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({expression}) STORED")
    op.execute("CREATE INDEX ix_incident_document_tsv ON incident_document USING GIN (tsv) WITH (fastupdate = off)")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        _regenerate_tsv(TSV_BEFORE)
    op.drop_index("ix_reference_data_model_id", table_name="reference_data")
    # Only the newest reference of each model survives: the unique constraint allows one.
    op.execute("DELETE FROM reference_data WHERE id NOT IN (SELECT max(id) FROM reference_data GROUP BY model_id)")
    if postgres:
        op.create_unique_constraint("reference_data_model_id_key", "reference_data", ["model_id"])
    else:
        with op.batch_alter_table("reference_data", recreate="always", copy_from=_reference_table(True)):
            pass
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_column("target")
        batch_op.drop_column("features")
    op.drop_column("monitor", "reprofiled_at")
    for column in ("archived_reason", "archived_by", "archived_at"):
        op.drop_column("monitored_model", column)
