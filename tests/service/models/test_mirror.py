"""The registry mirrored into the store's model_versions table, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC

from sqlalchemy import select

from service.models.mirror import VersionMirror, sync_model_versions
from service.models.registry import get_model, register_model
from storage.engine import create_store_engine
from storage.migrate import upgrade
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


def _wait_until(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_worker_mirrors_what_it_serves_once_per_version(store_url, store_engine, registered):
    mirror = VersionMirror(store_url, retry_s=0.05)
    models = list(registered.values())
    mirror.add([*models, models[0]])  # a version added twice is one row
    mirror.start()
    try:
        assert _wait_until(lambda: mirror.pending == 0)
    finally:
        mirror.close()
    assert set(_rows(store_engine)) == {(m.name, m.version) for m in models}


def test_a_worker_retries_until_the_store_is_migrated(tmp_path, registered):
    url = f"sqlite:///{tmp_path / 'later.db'}"
    mirror = VersionMirror(url, retry_s=0.05)
    mirror.add(registered.values())
    mirror.start()
    try:
        time.sleep(0.3)
        assert mirror.pending == len(registered)  # no table yet: kept, not dropped
        upgrade(url)
        assert _wait_until(lambda: mirror.pending == 0)
    finally:
        mirror.close()
    engine = create_store_engine(url)
    try:
        assert len(_rows(engine)) == len(registered)
    finally:
        engine.dispose()
