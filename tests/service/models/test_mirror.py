"""The registry mirrored into the store's model_versions table, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import select

from service.models.mirror import sync_model_versions
from service.models.registry import get_model, register_model
from storage.model_versions import model_versions_ready
from storage.schema import model_versions


def _rows(engine):
    with engine.connect() as connection:
        rows = connection.execute(select(model_versions)).mappings().all()
    return {(r["model_name"], r["model_version"]): dict(r) for r in rows}


def test_sync_upserts_one_row_per_registered_version(store_engine, registered, session_models_home):
    assert model_versions_ready(store_engine)
    assert sync_model_versions(store_engine, home=session_models_home) == 2
    rows = _rows(store_engine)
    assert set(rows) == {(m.name, m.version) for m in registered.values()}
    for model in registered.values():
        row = rows[(model.name, model.version)]
        assert row["snapshot_id"] == model.metadata["snapshot_id"]
        assert row["preprocessing_version"] == model.metadata["preprocessing_version"]
        assert row["labels"] == model.labels
        assert row["metadata"]["evaluation"]["reference"] == model.baseline
    assert sync_model_versions(store_engine, home=session_models_home) == 2
    assert len(_rows(store_engine)) == 2


def test_a_rebuilt_version_updates_its_row_and_a_new_one_is_added(
    store_engine, candidates, models_home
):
    sync_model_versions(store_engine, home=models_home)
    candidate = candidates["risk_scorer"]
    changed = {**candidate.metadata, "preprocessing_version": "standard-scaler.v9"}
    register_model(
        "risk_scorer",
        candidate.version,
        candidate.artifact.model,
        labels=candidate.labels,
        metadata=changed,
        home=models_home,
        replace=True,
    )
    register_model(
        "risk_scorer",
        "extra",
        candidate.artifact.model,
        labels=candidate.labels,
        metadata=candidate.metadata,
        home=models_home,
    )
    assert sync_model_versions(store_engine, home=models_home) == 3
    rows = _rows(store_engine)
    assert rows[("risk_scorer", candidate.version)]["preprocessing_version"] == "standard-scaler.v9"
    created = rows[("risk_scorer", "extra")]["created_at"]
    if created.tzinfo is None:  # SQLite keeps the UTC wall time only
        created = created.replace(tzinfo=UTC)
    assert created == get_model("risk_scorer", "extra", home=models_home).created_at
