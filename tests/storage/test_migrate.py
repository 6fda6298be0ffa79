from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from core.contracts import PUBLIC_PREDICTION_COLUMNS
from monitors.aggregate_source import RollupAggregates, SqlAggregates
from storage import rollups
from storage.audit import verify
from storage.engine import create_store_engine
from storage.migrate import alembic_config, current_revision, head_revision, upgrade
from storage.retention import plan_prune, prune
from storage.schema import audit_blocks, predictions, rollup_cursor
from storage.writer import write_predictions
from tests.conftest import POSTGRES_URL, require
from tests.storage.records import make_records
from tests.storage.test_rollups import assert_same
from tests.support.scratch import scratch_schema

CONTRACT_COLUMNS = set(PUBLIC_PREDICTION_COLUMNS)  # pinned in tests/core/test_contracts.py


def test_upgrade_reaches_head_and_is_idempotent(store_url):
    upgrade(store_url)  # the fixture already migrated once: a second run is a no-op
    engine = create_store_engine(store_url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"predictions", "monitor_results", "model_versions", "releases"} <= tables
    finally:
        engine.dispose()


def test_predictions_has_the_contract_columns_and_extras_are_nullable(store_engine):
    columns = {c["name"]: c for c in inspect(store_engine).get_columns("predictions")}
    assert set(columns) >= CONTRACT_COLUMNS
    for name, column in columns.items():
        if name not in CONTRACT_COLUMNS | {"id"}:
            assert column["nullable"] or column.get("default") is not None, name
    assert columns["predicted_class"]["nullable"]
    assert columns["confidence"]["nullable"]


def test_request_id_is_unique_whatever_the_time(store_engine):
    # On PostgreSQL `predictions` is partitioned by day: prediction_request_ids keeps it unique.
    insert = text(
        "INSERT INTO predictions (request_id, ts, tenant, endpoint, model_name, model_version, "
        "latency_ms, compute_ms, batch_size, status) "
        "VALUES ('r-1', :ts, 'acme', 'e', 'm', 'v1', 1.0, 1.0, 1, 'ok')"
    )
    with store_engine.begin() as connection:
        connection.execute(insert, {"ts": datetime(2026, 11, 16, tzinfo=UTC)})
    with pytest.raises(IntegrityError), store_engine.begin() as connection:
        connection.execute(insert, {"ts": datetime(2026, 11, 20, tzinfo=UTC)})


def test_sqlite_store_uses_wal(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'store.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_releases_table_has_the_release_columns(store_engine):
    columns = {c["name"]: c for c in inspect(store_engine).get_columns("releases")}
    expected = {"id", "bento_tag", "model_tags", "config_digest", "config", "parent_id"}
    assert expected | {"created_at", "created_by"} == set(columns)
    assert columns["parent_id"]["nullable"]
    assert not columns["config_digest"]["nullable"]


def test_the_audit_log_indexes_its_events_that_are_not_predictions(store_engine):
    indexes = {i["name"]: i for i in inspect(store_engine).get_indexes("audit_log")}
    assert indexes["ix_audit_log_actions"]["column_names"] == ["kind", "id"]


# Migration 0010: the ids that grow with traffic, and the columns storing them, are BIGINT.
WIDE = {
    ("predictions", "id"),
    ("audit_log", "id"),
    ("audit_blocks", "id"),
    ("audit_blocks", "first_id"),
    ("audit_blocks", "last_id"),
    ("rollup_cursor", "last_id"),
    ("prediction_rollups", "id"),
    ("monitor_results", "id"),
}
WIDE_SEQUENCES = {f"{t}_id_seq" for t, c in WIDE if c == "id"}
UNCHANGED = {"releases_id_seq", "rollouts_id_seq", "model_versions_id_seq", "rollup_cursor_id_seq"}
BEYOND_INT4 = 2**31 + 10
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _pg_types(engine: Engine) -> dict[str, str]:
    """`table.column` and sequence -> type, for the widened ones, every partition included."""
    with engine.connect() as connection:
        columns = connection.execute(
            text(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_class c "
                "JOIN pg_attribute a ON a.attrelid = c.oid JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
            )
        ).all()
        sequences = connection.execute(
            text(
                "SELECT sequencename, data_type::text FROM pg_sequences "
                "WHERE schemaname = current_schema()"
            )
        ).all()
    types = {
        f"{table}.{column}": kind
        for table, column, kind in columns
        if (table.split("_p2")[0].removesuffix("_default").removesuffix("_legacy"), column) in WIDE
    }
    return types | {name: kind for name, kind in sequences}


def _widened(engine: Engine) -> set[str]:
    """The kinds the widened columns and sequences have (one kind: all alike)."""
    types = _pg_types(engine)
    assert set(types) >= WIDE_SEQUENCES | {f"{table}.{column}" for table, column in WIDE}
    assert {types[name] for name in UNCHANGED} == {"integer"}
    return {kind for name, kind in types.items() if name not in UNCHANGED}


def _jump_ids(engine: Engine, to: int) -> None:
    """The next prediction and audit row take ids above `to`."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            for sequence in ("predictions_id_seq", "audit_log_id_seq"):
                connection.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": to})
            return
        # SQLite: a rowid is max(rowid) + 1; the newest prediction (not folded yet) moves up.
        connection.execute(
            text("UPDATE predictions SET id = :v WHERE id = (SELECT max(id) FROM predictions)"),
            {"v": to},
        )


def _write_beyond_int4(engine: Engine) -> None:
    """Batches through the real writer (COPY, and a replay holding known request ids) take ids
    beyond 2^31; the audit chain verifies, the fold counts every row once, retention prunes."""
    fresh = make_records(20, seed=31, start=T0 + timedelta(days=3))
    assert write_predictions(engine, fresh[:10], now=T0 + timedelta(days=4)) == 10
    assert write_predictions(engine, fresh, now=T0 + timedelta(days=4)) == 10  # 10 known
    with engine.connect() as connection:
        newest = connection.execute(select(func.max(predictions.c.id))).scalar_one()
        sealed_to = connection.execute(select(func.max(audit_blocks.c.last_id))).scalar_one()
    assert newest >= BEYOND_INT4 + 20
    if engine.dialect.name == "postgresql":
        assert sealed_to > BEYOND_INT4
    assert verify(engine).ok

    rollups.fold_pending(engine)
    with engine.connect() as connection:
        assert connection.execute(select(rollup_cursor.c.last_id)).scalar_one() == newest
    raw, rolled = SqlAggregates(engine), RollupAggregates(engine)
    window = (T0 - timedelta(days=1), T0 + timedelta(days=5), None)
    assert_same(rolled.class_counts(*window), raw.class_counts(*window))
    assert_same(
        rolled.compute_totals(*window),
        raw.compute_totals(*window),
        values=("n", "requests", "compute_ms", "busy_ms"),
    )
    # Retention prunes them all (partitions dropped, or batched deletes by audit id range).
    now = T0 + timedelta(days=5)
    result = prune(engine, plan_prune(engine, now=now, keep_days=1), now=now, actor="ops")
    assert result.finished
    assert result.predictions == 140
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(predictions)).scalar() == 0
    assert verify(engine).ok


def test_the_writer_audit_and_fold_take_ids_beyond_2_31(store_engine):
    # SQLite's INTEGER is 64-bit already (0010 is a no-op there); PostgreSQL's is BIGINT at head.
    for day in range(3):
        records = make_records(40, seed=day, start=T0 + timedelta(days=day))
        write_predictions(store_engine, records, now=T0 + timedelta(days=day + 1))
    rollups.fold_rollups(store_engine, limit=50)  # the fold part way, below 2^31
    _jump_ids(store_engine, BEYOND_INT4)
    _write_beyond_int4(store_engine)


def test_the_migration_widens_the_ids_of_a_filled_store(postgres_available):
    require(postgres_available, "PostgreSQL is not reachable")
    with scratch_schema(POSTGRES_URL, prefix="t", revision="0009") as url:
        engine = create_store_engine(url)
        try:
            for day in range(3):
                records = make_records(40, seed=day, start=T0 + timedelta(days=day))
                write_predictions(engine, records, now=T0 + timedelta(days=day + 1))
            rollups.fold_rollups(engine, limit=50)
            assert _widened(engine) == {"integer"}
            statement = select(predictions.c.id, predictions.c.request_id).order_by("id")
            with engine.connect() as connection:
                before = connection.execute(statement).all()

            upgrade(url)
            assert _widened(engine) == {"bigint"}
            with engine.connect() as connection:
                assert connection.execute(statement).all() == before
            # Back to integer while every value fits, and forth again.
            command.downgrade(alembic_config(url), "0009")
            assert _widened(engine) == {"integer"}
            upgrade(url)
            assert _widened(engine) == {"bigint"}

            _jump_ids(engine, BEYOND_INT4)
            _write_beyond_int4(engine)
            # Now the ids do not fit an integer: the downgrade refuses and changes nothing.
            with pytest.raises(RuntimeError, match=r"predictions_id_seq = 2147483"):
                command.downgrade(alembic_config(url), "0009")
            assert _widened(engine) == {"bigint"}
            assert current_revision(engine) == head_revision()
        finally:
            engine.dispose()
