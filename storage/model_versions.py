"""The `model_versions` table, the store's mirror of the model registry: upserts of registered
versions (never deletes) and the reads the monitors make."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, inspect, select

from storage.schema import model_versions

KEY = ("model_name", "model_version")
_c = model_versions.c


def model_versions_ready(engine: Engine) -> bool:
    """Whether the database holds the `model_versions` table (it has been migrated)."""
    return inspect(engine).has_table(model_versions.name)


def upsert_model_versions(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert or update one row per (model_name, model_version); returns the rows given."""
    if not rows:
        return 0
    statement = _insert(engine)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in KEY}
    with engine.begin() as connection:
        connection.execute(
            statement.on_conflict_do_update(index_elements=list(KEY), set_=updates), list(rows)
        )
    return len(rows)


def _insert(engine: Engine) -> Any:
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model_versions)
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(model_versions)
    raise ValueError(f"unsupported database dialect {engine.dialect.name!r}")


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
