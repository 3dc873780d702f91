"""postmortems

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:08:24.474829
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('taxonomy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('namespace', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('nodes', sa.JSON(), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('namespace')
    )
    op.create_table('action_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('action_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_item_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_document',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('incident_id')
    )
    op.create_table('similar_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('similar_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('dismissed', sa.Boolean(), nullable=False),
    sa.Column('dismissed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.ForeignKeyConstraint(['similar_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'similar_id')
    )
    with op.batch_alter_table('similar_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_similar_link_incident_id'), ['incident_id'], unique=False)

    op.create_table('writeup_revision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('markdown', sa.Text(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'revision')
    )
    with op.batch_alter_table('writeup_revision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_writeup_revision_incident_id'), ['incident_id'], unique=False)

    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('severity_rule', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='detector'))
        batch_op.add_column(sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('affected_models', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('affected_pipelines', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('impact', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('impact_numbers', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('impact_started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('mitigated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('completed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False,
                                      server_default=sa.func.current_timestamp()))
        batch_op.alter_column('status',
               existing_type=sa.VARCHAR(length=20),
               type_=sqlmodel.sql.sqltypes.AutoString(length=30),
               existing_nullable=False)
        batch_op.drop_column('search_text')  # replaced by incident_document and its full-text index
        batch_op.create_index(batch_op.f('ix_incident_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_status'), ['status'], unique=False)

    with op.batch_alter_table('incident_tag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='detector'))
        batch_op.add_column(sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False,
                                      server_default='watchtower'))

    create_fulltext_index()
    # Existing incidents become searchable: their document is their title and summary until they change.
    op.execute("INSERT INTO incident_document (incident_id, title, body) SELECT id, title, summary FROM incident")


def create_fulltext_index() -> None:
    """PostgreSQL: a generated, weighted tsvector with a GIN index. SQLite: an FTS5 table kept in sync by triggers."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE incident_document ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')) STORED")
        op.execute("CREATE INDEX ix_incident_document_tsv ON incident_document USING GIN (tsv)")
        return
    op.execute("CREATE VIRTUAL TABLE incident_fts USING fts5(title, body, content='incident_document', "
               "content_rowid='incident_id', tokenize='porter unicode61')")
    op.execute("CREATE TRIGGER incident_document_ai AFTER INSERT ON incident_document BEGIN "
               "INSERT INTO incident_fts(rowid, title, body) VALUES (new.incident_id, new.title, new.body); END")
    op.execute("CREATE TRIGGER incident_document_ad AFTER DELETE ON incident_document BEGIN "
               "INSERT INTO incident_fts(incident_fts, rowid, title, body) "
               "VALUES ('delete', old.incident_id, old.title, old.body); END")
    op.execute("CREATE TRIGGER incident_document_au AFTER UPDATE ON incident_document BEGIN "
               "INSERT INTO incident_fts(incident_fts, rowid, title, body) "
               "VALUES ('delete', old.incident_id, old.title, old.body); "
               "INSERT INTO incident_fts(rowid, title, body) VALUES (new.incident_id, new.title, new.body); END")



def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("incident_document_ai", "incident_document_ad", "incident_document_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS incident_fts")
    with op.batch_alter_table('incident_tag', schema=None) as batch_op:
        batch_op.drop_column('author')
        batch_op.drop_column('source')

    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_status'))
        batch_op.drop_index(batch_op.f('ix_incident_severity'))
        batch_op.alter_column('status',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=30),
               type_=sa.VARCHAR(length=20),
               existing_nullable=False)
        batch_op.drop_column('updated_at')
        batch_op.drop_column('completed_at')
        batch_op.drop_column('mitigated_at')
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('impact_started_at')
        batch_op.drop_column('impact_numbers')
        batch_op.drop_column('impact')
        batch_op.drop_column('affected_pipelines')
        batch_op.drop_column('affected_models')
        batch_op.drop_column('owner')
        batch_op.drop_column('source')
        batch_op.drop_column('severity_rule')
        batch_op.add_column(sa.Column('search_text', sa.Text(), nullable=False, server_default=''))

    with op.batch_alter_table('writeup_revision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_writeup_revision_incident_id'))

    op.drop_table('writeup_revision')
    with op.batch_alter_table('similar_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_similar_link_incident_id'))

    op.drop_table('similar_link')
    op.drop_table('incident_document')
    with op.batch_alter_table('action_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_item_incident_id'))

    op.drop_table('action_item')
    op.drop_table('taxonomy')
