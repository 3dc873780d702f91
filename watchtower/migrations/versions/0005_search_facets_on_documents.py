"""search facets on incident documents; GIN indexes without pending lists

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("opened_at", "severity", "status", "model_id", "tags")


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: rebuilding incident_document on SQLite would drop the triggers
    # that keep its FTS5 index in sync. SQLite cannot add a NOT NULL column without a default, so the
    # defaults stay there; PostgreSQL drops them once the rows are filled.
    postgres = op.get_bind().dialect.name == "postgresql"
    tags_type = postgresql.ARRAY(sa.Text()) if postgres else sa.JSON()
    op.add_column("incident_document", sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False,
                                                 server_default="1970-01-01 00:00:00"))
    op.add_column("incident_document", sa.Column("severity", sa.String(length=10), nullable=False,
                                                 server_default=""))
    op.add_column("incident_document", sa.Column("status", sa.String(length=30), nullable=False,
                                                 server_default=""))
    op.add_column("incident_document", sa.Column("model_id", sa.Integer(), nullable=True))
    op.add_column("incident_document", sa.Column("tags", tags_type, nullable=False,
                                                 server_default="{}" if postgres else "[]"))
    op.execute("UPDATE incident_document SET opened_at = i.opened_at, severity = i.severity, status = i.status, "
               "model_id = i.model_id FROM incident AS i WHERE i.id = incident_document.incident_id")
    # Sorted, as postmortems.documents.refresh_document stores them.
    aggregate = "array_agg(t.tag ORDER BY t.tag)" if postgres else "json_group_array(t.tag)"
    op.execute(f"UPDATE incident_document SET tags = (SELECT {aggregate} FROM (SELECT tag FROM incident_tag "
               "WHERE incident_id = incident_document.incident_id AND confidence <> 'rejected' ORDER BY tag) AS t) "
               "WHERE EXISTS (SELECT 1 FROM incident_tag AS t WHERE t.incident_id = incident_document.incident_id "
               "AND t.confidence <> 'rejected')")
    if postgres:
        for name in ("opened_at", "severity", "status", "tags"):
            op.alter_column("incident_document", name, server_default=None)
        # fastupdate off for both GIN indexes: incidents arrive a few at a time, and a pending list (up to
        # 4 MB before it is merged) is read by every query that uses the index: 20 ms for a rare tag at 100k.
        op.execute("CREATE INDEX ix_incident_document_tags ON incident_document USING GIN (tags) "
                   "WITH (fastupdate = off)")
        op.execute("ALTER INDEX ix_incident_document_tsv SET (fastupdate = off)")
        op.execute("SELECT gin_clean_pending_list('ix_incident_document_tsv')")
    op.create_index("ix_incident_document_newest", "incident_document", ["opened_at", "incident_id"])


def downgrade() -> None:
    op.drop_index("ix_incident_document_newest", table_name="incident_document")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_incident_document_tags", table_name="incident_document")
        op.execute("ALTER INDEX ix_incident_document_tsv RESET (fastupdate)")
    for name in reversed(COLUMNS):
        op.drop_column("incident_document", name)
