"""The `model_versions` table: upserts of registered versions (never deletes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, inspect

from storage.schema import model_versions

KEY = ("model_name", "model_version")


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
