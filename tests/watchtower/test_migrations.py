"""Migrations: the schema they build is the models' schema, 0004 carries stored events into segments, 0005
copies search facets onto incident documents, 0007 gives queued outbox messages an idempotency key, 0028
keys serving events by (model, id) without losing any and 0029 stores segment bytes uncompressed on PostgreSQL."""

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

import watchtower.tables  # noqa: F401 (registers every table on SQLModel.metadata)
from alerts.outbox import OutboxMessage
from detectors.base import ID, LABEL, PREDICTION
from postmortems.models import IncidentDocument
from tests.conftest import POSTGRES_URL
from watchtower.db import MIGRATIONS, make_engine, migrate
from watchtower.events.models import ServingEvent
from watchtower.events.store import read_window
from watchtower.registry.models import ModelVersion, MonitoredModel, ReferenceData


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Engine]:
    """A database of its own with no tables (PostgreSQL: a scratch database, dropped afterwards)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/migrate.db")
        yield engine
        engine.dispose()
        return
    url = make_url(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"watchtower_migrate_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False)
                         .replace("postgresql+psycopg://", "postgresql://", 1))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _upgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migrated_schema_matches_the_models(empty: Engine) -> None:
    migrate(empty)
    with empty.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = [d for d in compare_metadata(context, SQLModel.metadata)
                       if not _outside_models(d)]
    assert differences == []


def _outside_models(diff: object) -> bool:
    """Tables the models do not declare: APScheduler's, and the full-text columns and indexes the migrations build."""
    text_ = repr(diff)
    return any(name in text_ for name in ("apscheduler_jobs", "incident_fts", "tsv", "ix_incident_document_tags"))


def _model_row(conn: Connection, name: str, features: str, at: datetime) -> None:
    """Model 1 (and its pipeline 1) as a migration older than the models inserts it: plain SQL."""
    conn.execute(text("INSERT INTO pipeline (id, name, paused, updated_at) VALUES (1, 'p', false, :t)"), {"t": at})
    conn.execute(text(
        "INSERT INTO monitored_model (id, name, task, features, input_style, output_kind, pipeline_id, "
        "active_role, created_at) VALUES (1, :n, 'classification', :f, 'named', 'tensor(int64)', 1, 'primary', :t)"),
        {"n": name, "f": features, "t": at})


def test_0004_moves_stored_events_into_segments(empty: Engine) -> None:
    _upgrade(empty, "0003")
    served = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with empty.begin() as conn:
        _model_row(conn, "legacy", '[{"name": "x", "type": "numeric"}, {"name": "c", "type": "categorical"}]', served)
        for i in range(3):
            conn.execute(text(
                "INSERT INTO serving_event (model_id, event_id, ts, features, prediction, latency_ms, received_at) "
                "VALUES (1, :e, :ts, :f, :p, 2.5, :ts)"),
                {"e": f"e{i}", "ts": served + timedelta(seconds=i), "f": f'{{"x": {i}.5, "c": "k{i}"}}', "p": "1"})
        conn.execute(text("INSERT INTO label (model_id, event_id, label, received_at) VALUES (1, 'e1', '0', :t)"),
                     {"t": served})
    migrate(empty)
    with Session(empty) as session:
        model = session.exec(select(MonitoredModel)).one()
        frame = read_window(session, model, served, served + timedelta(minutes=1))
        assert sorted(e.event_id for e in session.exec(select(ServingEvent)).all()) == ["e0", "e1", "e2"]
    assert frame[ID].tolist() == ["e0", "e1", "e2"]
    assert frame["x"].tolist() == [0.5, 1.5, 2.5] and frame["c"].tolist() == ["k0", "k1", "k2"]
    assert frame[PREDICTION].tolist() == ["1", "1", "1"]
    assert frame[LABEL].tolist() == [None, "0", None]


def test_0005_copies_search_facets_onto_documents(empty: Engine) -> None:
    _upgrade(empty, "0004")
    opened = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with empty.begin() as conn:
        for iid, severity, status in ((1, "SEV1", "resolved"), (2, "SEV3", "open")):
            conn.execute(text(
                "INSERT INTO incident (id, title, summary, severity, severity_rule, status, source, "
                "affected_models, affected_pipelines, impact, impact_numbers, evidence, opened_at, updated_at) "
                "VALUES (:id, 't', 's', :sev, '', :status, 'manual', '[]', '[]', '', '{}', '{}', :at, :at)"),
                {"id": iid, "sev": severity, "status": status, "at": opened + timedelta(days=iid)})
            conn.execute(text("INSERT INTO incident_document (incident_id, title, body) VALUES (:id, 't', 'stale')"),
                         {"id": iid})
        for tag, confidence in (("config-change", "confirmed"), ("concept-drift", "suggested"),
                                ("hmb-failed-join", "rejected")):
            conn.execute(text("INSERT INTO incident_tag (incident_id, tag, confidence, source, author, created_at) "
                              "VALUES (1, :tag, :confidence, 'person', 'ana', :at)"),
                         {"tag": tag, "confidence": confidence, "at": opened})
    migrate(empty)
    with Session(empty) as session:
        documents = {d.incident_id: d for d in session.exec(select(IncidentDocument)).all()}
    assert documents[1].tags == ["concept-drift", "config-change"] and documents[2].tags == []
    assert (documents[1].severity, documents[1].status, documents[1].model_id) == ("SEV1", "resolved", None)
    assert (documents[2].severity, documents[2].status) == ("SEV3", "open")
    assert documents[2].opened_at == opened + timedelta(days=2)


def test_0007_gives_queued_outbox_messages_their_own_key(empty: Engine) -> None:
    _upgrade(empty, "0005")
    queued = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    with empty.begin() as conn:
        for status in ("pending", "failed"):
            conn.execute(text("INSERT INTO outbox_message (kind, payload, status, attempts, next_attempt_at, "
                              "created_at) VALUES ('slack', '{\"text\": \"x\"}', :s, 1, :t, :t)"),
                         {"s": status, "t": queued})
    migrate(empty)
    with Session(empty) as session:
        messages = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [m.status for m in messages] == ["pending", "failed"]
    keys = [m.idempotency_key for m in messages]
    assert len(set(keys)) == 2 and all(len(k) == 32 and int(k, 16) >= 0 for k in keys)
    assert all(m.claimed_by is None and m.first_attempt_at is None for m in messages)


def test_0028_keys_serving_events_by_model_and_id_and_keeps_them(empty: Engine) -> None:
    _upgrade(empty, "0027")
    served = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with empty.begin() as conn:
        _model_row(conn, "m", "[]", served)
        for i in range(3):
            conn.execute(text("INSERT INTO serving_event (model_id, event_id, ts, version, received_at) "
                              "VALUES (1, :e, :ts, :v, :ts)"),
                         {"e": f"e{i}", "ts": served + timedelta(seconds=i), "v": f"v{i}"})
    migrate(empty)
    with Session(empty) as session:
        kept = session.exec(select(ServingEvent).order_by(col(ServingEvent.event_id))).all()
    assert [(e.model_id, e.event_id, e.ts, e.version) for e in kept] == [
        (1, f"e{i}", served + timedelta(seconds=i), f"v{i}") for i in range(3)]
    with pytest.raises(IntegrityError), empty.begin() as conn:  # the key is still enforced
        conn.execute(text("INSERT INTO serving_event (model_id, event_id, ts, received_at) "
                          "VALUES (1, 'e1', :t, :t)"), {"t": served})
    _downgrade(empty, "0027")
    with empty.begin() as conn:
        rows = conn.execute(text("SELECT id, event_id FROM serving_event ORDER BY event_id")).all()
    assert [r[1] for r in rows] == ["e0", "e1", "e2"] and len({r[0] for r in rows}) == 3


def test_0029_stores_segment_bytes_uncompressed_on_postgresql_and_keeps_them(empty: Engine) -> None:
    _upgrade(empty, "0028")
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    before, after = bytes(range(256)) * 40, b"PAR1" * 3000  # 10 KB each: past PostgreSQL's 2 KB TOAST threshold
    with empty.begin() as conn:
        _model_row(conn, "m", "[]", at)
        _segment_row(conn, before, at)
    migrate(empty)
    assert _segment_storage(empty) == ({"parquet": "e", "profile": "e"} if _postgres(empty) else {})
    with empty.begin() as conn:
        _segment_row(conn, after, at)
        stored = conn.execute(text("SELECT parquet, profile FROM event_segment ORDER BY id")).all()
    assert [(bytes(p), bytes(q)) for p, q in stored] == [(before, before[::-1]), (after, after[::-1])]
    _downgrade(empty, "0028")
    assert _segment_storage(empty) == ({"parquet": "x", "profile": "x"} if _postgres(empty) else {})
    with empty.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_segment")).scalar_one() == 2


def test_0030_drops_the_time_index_and_indexes_only_what_a_fallback_served(empty: Engine) -> None:
    _upgrade(empty, "0029")
    served = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with empty.begin() as conn:
        _model_row(conn, "m", "[]", served)
        for i, version in enumerate(["v1", "fallback-v1", "fallback-v1", "v1"]):
            conn.execute(text("INSERT INTO serving_event (model_id, event_id, ts, version, received_at) "
                              "VALUES (1, :e, :ts, :v, :ts)"), {"e": f"e{i}", "ts": served, "v": version})
    migrate(empty)
    assert _indexes(empty) == {"ix_serving_event_fallback"}
    with empty.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM serving_event WHERE model_id = 1 AND version LIKE "
                                 "'fallback-%' AND ts >= :t"), {"t": served}).scalar() == 2
        if not _postgres(empty):  # SQLite says which index a query reads; the partial one serves the count
            plan = conn.execute(text("EXPLAIN QUERY PLAN SELECT count(*) FROM serving_event WHERE model_id = 1 AND "
                                     "version LIKE 'fallback-%' AND ts >= '2026-01-01'")).all()
            assert "ix_serving_event_fallback" in " ".join(str(row) for row in plan)
    _downgrade(empty, "0029")
    assert _indexes(empty) == {"ix_serving_event_model_ts"}


def _indexes(engine: Engine) -> set[str]:
    """serving_event's indexes besides its primary key."""
    from sqlalchemy import inspect

    return {i["name"] for i in inspect(engine).get_indexes("serving_event") if i["name"]}


def _postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _segment_row(conn: Connection, data: bytes, at: datetime) -> None:
    conn.execute(text("INSERT INTO event_segment (model_id, min_ts, max_ts, n_rows, n_bytes, parquet, profile, "
                      "created_at) VALUES (1, :t, :t, 1, :n, :data, :profile, :t)"),
                 {"t": at, "n": len(data), "data": data, "profile": data[::-1]})


def _segment_storage(engine: Engine) -> dict[str, str]:
    """PostgreSQL's storage of event_segment's byte columns: e (EXTERNAL: no compression) or x (EXTENDED)."""
    if not _postgres(engine):
        return {}
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'event_segment'::regclass "
            "AND attname IN ('parquet', 'profile')")).all())


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_full_text_and_tag_indexes_are_in_place(db: Engine) -> None:
    """PostgreSQL: both GIN indexes exist without a pending list (fastupdate off), which every query using
    them would otherwise scan. SQLite: the FTS5 table and the triggers that keep it in sync."""
    with db.connect() as conn:
        if db.dialect.name == "postgresql":
            options = dict(conn.execute(text(
                "SELECT relname, array_to_string(reloptions, ',') FROM pg_class "
                "WHERE relname IN ('ix_incident_document_tsv', 'ix_incident_document_tags')")).all())
            assert options == {"ix_incident_document_tsv": "fastupdate=off",
                               "ix_incident_document_tags": "fastupdate=off"}
        else:
            names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'incident_%'")).scalars())
            assert {"incident_fts", "incident_document_ai", "incident_document_ad", "incident_document_au"} <= names


def test_0008_records_each_versions_schema_and_keeps_reference_history(empty: Engine) -> None:
    _upgrade(empty, "0005")
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    features = '[{"name": "x", "type": "numeric"}]'
    with empty.begin() as conn:
        conn.execute(text("INSERT INTO pipeline (id, name, paused, updated_at) VALUES (1, 'p', false, :t)"), {"t": at})
        conn.execute(text(
            "INSERT INTO monitored_model (id, name, task, features, input_style, output_kind, target, pipeline_id, "
            "active_role, created_at) VALUES (1, 'legacy', 'classification', :f, 'tensor', 'tensor(int64)', 'y', "
            "1, 'primary', :t)"), {"f": features, "t": at})
        for role in ("primary", "fallback"):
            conn.execute(text("INSERT INTO model_version (model_id, role, version, sha256, onnx, created_at) "
                              "VALUES (1, :r, 1, 'abc', :b, :t)"), {"r": role, "b": b"onnx", "t": at})
        conn.execute(text("INSERT INTO reference_data (model_id, n_rows, parquet, created_at) "
                          "VALUES (1, 3, :b, :t)"), {"b": b"pq", "t": at})
        conn.execute(text(
            "INSERT INTO incident (id, title, summary, severity, severity_rule, status, source, "
            "affected_models, affected_pipelines, impact, impact_numbers, evidence, opened_at, updated_at) "
            "VALUES (7, 't', 's', 'SEV3', '', 'open', 'manual', '[]', '[]', '', '{}', '{}', :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO incident_document (incident_id, title, body, opened_at, severity, status, "
                          "tags) VALUES (7, 'a<b>x', 'when p<0.05 and <b>bold</b>', :t, 'SEV3', 'open', :tags)"),
                     {"t": at, "tags": "{}" if empty.dialect.name == "postgresql" else "[]"})
    migrate(empty)
    with Session(empty) as session:
        versions = session.exec(select(ModelVersion)).all()
        assert [(v.features, v.target) for v in versions] == [([{"name": "x", "type": "numeric"}], "y")] * 2
        session.add(ReferenceData(model_id=1, n_rows=4, parquet=b"pq2"))  # a second reference: history is kept
        session.commit()
        assert len(session.exec(select(ReferenceData)).all()) == 2
        if empty.dialect.name == "postgresql":  # the index sees the words next to angle brackets
            words = session.execute(text("SELECT tsv::text FROM incident_document")).scalar_one()
            assert "'bold'" in words and "'b'" in words and "'0.05'" in words
