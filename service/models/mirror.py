"""Mirror the model registry into the store's `model_versions` table (for SQL readers and monitors).

Rows are upserted, never deleted: predictions of a removed version keep their baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.models.registry import RegisteredModel, list_models
from storage.engine import Engine
from storage.model_versions import upsert_model_versions


def sync_model_versions(engine: Engine, *, home: Path | str | None = None) -> int:
    """Upsert one row per registered version; returns the number of versions mirrored."""
    return upsert_model_versions(engine, [version_row(model) for model in list_models(home=home)])


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
