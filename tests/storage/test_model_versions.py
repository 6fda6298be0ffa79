"""The store's mirror of the model registry: upserts and reads, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from storage.engine import create_store_engine
from storage.model_versions import (
    is_mirrored,
    mirrored_versions,
    model_versions_ready,
    upsert_model_versions,
    version_metadata,
)
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


def _mirror(engine, model_name, version, metadata):
    with engine.begin() as connection:
        connection.execute(
            insert(model_versions).values(
                model_name=model_name,
                model_version=version,
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
                snapshot_id="0" * 64,
                preprocessing_version="1",
                labels={},
                metadata=metadata,
            )
        )


def test_versions_metadata_and_membership(store_engine):
    _mirror(store_engine, "b_model", "v2", {"classes": ["x"]})
    _mirror(store_engine, "a_model", "v1", {"classes": ["y"]})
    _mirror(store_engine, "b_model", "v1", {"classes": ["z"]})
    assert mirrored_versions(store_engine) == [
        ("a_model", "v1"),
        ("b_model", "v1"),
        ("b_model", "v2"),
    ]
    assert mirrored_versions(store_engine, "b_model") == [("b_model", "v1"), ("b_model", "v2")]
    assert version_metadata(store_engine, "b_model", "v2") == {"classes": ["x"]}
    assert version_metadata(store_engine, "b_model", "v9") is None
    assert is_mirrored(store_engine, "a_model")
    assert not is_mirrored(store_engine, "c_model")
