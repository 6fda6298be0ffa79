"""Last traffic per key, read from `predictions`: the stale-endpoint audit's input."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from core.stale import RegisteredVersion, Usage
from core.timeutil import to_utc
from storage.schema import model_versions, predictions

USAGE_KEY = ("endpoint", "model_name", "model_version", "tenant", "region")
_p = predictions.c


def last_seen(engine: Engine) -> list[Usage]:
    """The newest prediction time of every (endpoint, model, version, tenant, region) key ever
    stored: one grouped scan, a row per key."""
    keys = [_p[c] for c in USAGE_KEY]
    statement = select(*keys, func.max(_p.ts).label("last_seen")).group_by(*keys)
    with engine.connect() as connection:
        rows = connection.execute(statement).mappings().all()
    return [
        Usage(
            endpoint=str(row["endpoint"]),
            model_name=str(row["model_name"]),
            model_version=str(row["model_version"]),
            tenant=str(row["tenant"]),
            region=row["region"],
            last_seen=to_utc(row["last_seen"]),
        )
        for row in rows
    ]


def registered_versions(engine: Engine) -> list[RegisteredVersion]:
    """Every model version in the registry's mirror, with its creation time."""
    c = model_versions.c
    statement = select(c.model_name, c.model_version, c.created_at)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [
        RegisteredVersion(str(name), str(version), to_utc(created_at))
        for name, version, created_at in rows
    ]
