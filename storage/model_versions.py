"""Reads of `model_versions`, the store's mirror of the model registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select

from storage.schema import model_versions

_c = model_versions.c


def version_metadata(
    engine: Engine, model_name: str, model_version: str
) -> Mapping[str, Any] | None:
    """The mirrored metadata of one model version (None if not mirrored or not a mapping)."""
    statement = select(_c.metadata).where(
        _c.model_name == model_name, _c.model_version == model_version
    )
    with engine.connect() as connection:
        value = connection.execute(statement).scalar_one_or_none()
    return value if isinstance(value, Mapping) else None


def mirrored_versions(engine: Engine, model_name: str | None = None) -> list[tuple[str, str]]:
    """(model, version) pairs in the mirror, sorted; only `model_name`'s when given."""
    statement = select(_c.model_name, _c.model_version).order_by(_c.model_name, _c.model_version)
    if model_name is not None:
        statement = statement.where(_c.model_name == model_name)
    with engine.connect() as connection:
        return [(str(m), str(v)) for m, v in connection.execute(statement).all()]


def is_mirrored(engine: Engine, model_name: str) -> bool:
    """Whether the mirror holds any version of `model_name`."""
    statement = select(_c.model_name).where(_c.model_name == model_name).limit(1)
    with engine.connect() as connection:
        return connection.execute(statement).first() is not None
