from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from core.contracts import PUBLIC_PREDICTION_COLUMNS
from storage.engine import create_store_engine
from storage.migrate import current_revision, head_revision, upgrade

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
