"""Mirror the model registry into the store's `model_versions` table (for SQL readers and monitors).

Rows are upserted, never deleted: predictions of a removed version keep their baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect

from service.models.registry import RegisteredModel, list_models
from storage.schema import model_versions

_KEY = ("model_name", "model_version")


def mirror_ready(engine: Engine) -> bool:
    """Whether the database holds the `model_versions` table (it has been migrated)."""
    return inspect(engine).has_table(model_versions.name)


def sync_model_versions(engine: Engine, *, home: Path | str | None = None) -> int:
    """Upsert one row per registered version; returns the number of versions mirrored."""
    rows = [version_row(model) for model in list_models(home=home)]
    if not rows:
        return 0
    statement = _insert(engine)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in _KEY}
    with engine.begin() as connection:
        connection.execute(
            statement.on_conflict_do_update(index_elements=list(_KEY), set_=updates), rows
        )
    return len(rows)


def version_row(model: RegisteredModel) -> dict[str, Any]:
    """The `model_versions` row of a registered version."""
    return {
        "model_name": model.name,
        "model_version": model.version,
        "created_at": model.created_at,
        "snapshot_id": model.metadata["snapshot_id"],
        "preprocessing_version": model.metadata["preprocessing_version"],
        "labels": model.labels,
        "metadata": model.metadata,
    }


def _insert(engine: Engine) -> Any:
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model_versions)
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(model_versions)
    raise ValueError(f"unsupported database dialect {engine.dialect.name!r}")
