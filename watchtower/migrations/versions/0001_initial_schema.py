"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 10:45:20.040816
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pipeline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('paused_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('paused_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('webhook_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pipeline', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_name'), ['name'], unique=True)

    op.create_table('monitored_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('task', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('input_style', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('output_kind', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('active_role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('swapped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipeline.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('monitored_model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitored_model_name'), ['name'], unique=True)

    op.create_table('label',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('label', sa.JSON(), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'event_id')
    )
    op.create_table('model_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('onnx', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'role', 'version')
    )
    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_version_model_id'), ['model_id'], unique=False)

    op.create_table('monitor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('detectors', sa.JSON(), nullable=False),
    sa.Column('interval_s', sa.Integer(), nullable=False),
    sa.Column('window_s', sa.Integer(), nullable=False),
    sa.Column('min_events', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'name')
    )
    with op.batch_alter_table('monitor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitor_model_id'), ['model_id'], unique=False)

    op.create_table('reference_data',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('parquet', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id')
    )
    op.create_table('serving_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('prediction', sa.JSON(), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=True),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_id', 'event_id')
    )
    with op.batch_alter_table('serving_event', schema=None) as batch_op:
        batch_op.create_index('ix_serving_event_model_ts', ['model_id', 'ts'], unique=False)

    op.create_table('check_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('monitor_id', sa.Integer(), nullable=False),
    sa.Column('detector', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('engine', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('window_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('window_end', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('n_reference', sa.Integer(), nullable=False),
    sa.Column('n_current', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitor.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('check_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_run_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_check_run_monitor_id'), ['monitor_id'], unique=False)

    op.create_table('incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('severity', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=True),
    sa.Column('monitor_id', sa.Integer(), nullable=True),
    sa.Column('open_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.ForeignKeyConstraint(['monitor_id'], ['monitor.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_key')
    )
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_opened_at'), ['opened_at'], unique=False)

    op.create_table('action_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.ForeignKeyConstraint(['model_id'], ['monitored_model.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('action_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_run_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_run_model_id'), ['model_id'], unique=False)

    op.create_table('check_result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_run_id', sa.Integer(), nullable=False),
    sa.Column('feature', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('test', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('statistic', sa.Float(), nullable=True),
    sa.Column('p_value', sa.Float(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('breached', sa.Boolean(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['check_run_id'], ['check_run.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_check_result_check_run_id'), ['check_run_id'], unique=False)

    op.create_table('incident_tag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('tag', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('confidence', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'tag')
    )
    with op.batch_alter_table('incident_tag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_tag_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_tag_tag'), ['tag'], unique=False)

    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_status'), ['status'], unique=False)

    op.create_table('timeline_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_timeline_entry_incident_id'), ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('timeline_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_timeline_entry_incident_id'))

    op.drop_table('timeline_entry')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_status'))

    op.drop_table('outbox_message')
    with op.batch_alter_table('incident_tag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_tag_tag'))
        batch_op.drop_index(batch_op.f('ix_incident_tag_incident_id'))

    op.drop_table('incident_tag')
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_result_check_run_id'))

    op.drop_table('check_result')
    with op.batch_alter_table('action_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_run_model_id'))
        batch_op.drop_index(batch_op.f('ix_action_run_incident_id'))

    op.drop_table('action_run')
    with op.batch_alter_table('incident', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_opened_at'))
        batch_op.drop_index(batch_op.f('ix_incident_model_id'))

    op.drop_table('incident')
    with op.batch_alter_table('check_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_check_run_monitor_id'))
        batch_op.drop_index(batch_op.f('ix_check_run_model_id'))

    op.drop_table('check_run')
    with op.batch_alter_table('serving_event', schema=None) as batch_op:
        batch_op.drop_index('ix_serving_event_model_ts')

    op.drop_table('serving_event')
    op.drop_table('reference_data')
    with op.batch_alter_table('monitor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitor_model_id'))

    op.drop_table('monitor')
    with op.batch_alter_table('model_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_version_model_id'))

    op.drop_table('model_version')
    op.drop_table('label')
    with op.batch_alter_table('monitored_model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitored_model_name'))

    op.drop_table('monitored_model')
    with op.batch_alter_table('pipeline', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipeline_name'))

    op.drop_table('pipeline')
