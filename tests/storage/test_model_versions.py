"""Upserts into model_versions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from storage.engine import create_store_engine
from storage.model_versions import model_versions_ready, upsert_model_versions
from storage.schema import model_versions


def _row(version: str, preprocessing: str = "v1") -> dict[str, object]:
    return {
        "model_name": "risk_scorer",
        "model_version": version,
        "created_at": datetime(2024, 1, 1, tzinfo=UTC),
        "snapshot_id": "s" * 12,
        "preprocessing_version": preprocessing,
        "labels": {},
        "metadata": {"k": version},
    }


def test_upsert_inserts_then_updates_by_name_and_version(store_engine):
    assert model_versions_ready(store_engine)
    assert upsert_model_versions(store_engine, [_row("a"), _row("b")]) == 2
    assert upsert_model_versions(store_engine, [_row("a", preprocessing="v2")]) == 1
    with store_engine.connect() as connection:
        rows = connection.execute(select(model_versions)).mappings().all()
    by_version = {r["model_version"]: r["preprocessing_version"] for r in rows}
    assert by_version == {"a": "v2", "b": "v1"}


def test_no_rows_is_a_no_op(store_engine):
    assert upsert_model_versions(store_engine, []) == 0


def test_an_unmigrated_store_is_not_ready(tmp_path):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert not model_versions_ready(engine)
    finally:
        engine.dispose()
