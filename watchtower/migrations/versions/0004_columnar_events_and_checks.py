"""columnar event segments, ingest rejections, stage feature logs, business metrics, count windows,
learned thresholds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Features move to columnar segments; stored events are converted at the end of this upgrade.
    with op.batch_alter_table("serving_event", schema=None) as batch_op:
        batch_op.alter_column("features", existing_type=sa.JSON(), nullable=True)
        batch_op.add_column(sa.Column("error", sa.String(length=2000), nullable=True))
    op.create_table(
        "event_segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("min_ts", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("max_ts", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("parquet", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_segment_model_ts", "event_segment", ["model_id", "max_ts", "min_ts"])
    op.create_table(
        "ingest_rejection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("ts", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ingest_rejection_model_ts", "ingest_rejection", ["model_id", "ts"])
    op.create_table(
        "feature_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("logged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "stage", "entity_id"),
    )
    op.create_table(
        "metric_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("ts", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["monitored_model.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_metric_point_model_ts", "metric_point", ["model_id", "ts"])
    with op.batch_alter_table("monitor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_events", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cursor_ts", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("cursor_event_id", sa.String(length=200), nullable=True))
    with op.batch_alter_table("check_result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("threshold_source", sa.String(length=300), nullable=False,
                                      server_default="static"))
    op.create_table(
        "fitted_threshold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("detector", sa.String(length=100), nullable=False),
        sa.Column("test", sa.String(length=50), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("fitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["monitor_id"], ["monitor.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("monitor_id", "detector", "test", "feature"),
    )
    _events_to_segments()


def _events_to_segments(chunk: int = 100_000) -> None:
    """Move every stored event's features into segments of up to `chunk` rows, in served-time order."""
    import json

    from watchtower.events.frames import KEY_COLUMNS, events_frame
    from watchtower.events.segments import encode

    bind = op.get_bind()
    text_json = bind.dialect.name == "sqlite"
    models = bind.execute(sa.text("SELECT id, task, features FROM monitored_model")).all()
    for model_id, task, features in models:
        schema = {f["name"]: f["type"] for f in (json.loads(features) if text_json else features)}
        rows = bind.execute(sa.text(
            "SELECT event_id, ts, features, prediction, latency_ms FROM serving_event "
            "WHERE model_id = :m AND features IS NOT NULL ORDER BY ts"), {"m": model_id}).mappings().all()
        for start in range(0, len(rows), chunk):
            # SQLite hands JSON columns back as text (or a number, by column affinity); PostgreSQL decodes them.
            batch = [dict(r) | {k: json.loads(r[k]) if text_json and isinstance(r[k], str) else r[k]
                                for k in ("features", "prediction")} for r in rows[start:start + chunk]]
            frame = events_frame(batch, schema, task).drop(columns=list(KEY_COLUMNS))
            bind.execute(sa.text(
                "INSERT INTO event_segment (model_id, min_ts, max_ts, n_rows, parquet, created_at) "
                "VALUES (:m, :lo, :hi, :n, :p, CURRENT_TIMESTAMP)"),
                {"m": model_id, "lo": batch[0]["ts"], "hi": batch[-1]["ts"], "n": len(batch), "p": encode(frame)})
        bind.execute(sa.text("UPDATE serving_event SET features = NULL WHERE model_id = :m"), {"m": model_id})


def downgrade() -> None:
    op.drop_table("fitted_threshold")
    with op.batch_alter_table("check_result", schema=None) as batch_op:
        batch_op.drop_column("threshold_source")
    with op.batch_alter_table("monitor", schema=None) as batch_op:
        batch_op.drop_column("cursor_event_id")
        batch_op.drop_column("cursor_ts")
        batch_op.drop_column("window_events")
    op.drop_index("ix_metric_point_model_ts", table_name="metric_point")
    op.drop_table("metric_point")
    op.drop_table("feature_log")
    op.drop_index("ix_ingest_rejection_model_ts", table_name="ingest_rejection")
    op.drop_table("ingest_rejection")
    op.drop_index("ix_event_segment_model_ts", table_name="event_segment")
    op.drop_table("event_segment")
    with op.batch_alter_table("serving_event", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.alter_column("features", existing_type=sa.JSON(), nullable=False)
