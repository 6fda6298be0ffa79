"""Reads of the store's mirror of the model registry."""

from datetime import UTC, datetime

from sqlalchemy import insert

from storage.model_versions import is_mirrored, mirrored_versions, version_metadata
from storage.schema import model_versions


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
    assert is_mirrored(store_engine, "a_model") and not is_mirrored(store_engine, "c_model")
