"""The `releases` table: one row per built release, written once and read back (never updated)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, RowMapping, insert, select

from core.contracts import AuditEvent
from core.timeutil import to_utc
from storage.audit import append_in
from storage.schema import releases

_c = releases.c


@dataclass(frozen=True)
class ReleaseRecord:
    """A stored release: its Bento, the model versions it pins and its pinned configuration."""

    id: int
    bento_tag: str | None
    model_tags: list[str]
    config_digest: str
    config: dict[str, Any]
    parent_id: int | None
    created_at: datetime
    created_by: str


def insert_release(
    engine: Engine,
    *,
    bento_tag: str | None,
    model_tags: list[str],
    config_digest: str,
    config: Mapping[str, Any],
    parent_id: int | None,
    created_at: datetime,
    created_by: str,
    audit: AuditEvent | None = None,
) -> int:
    """Store one release, and `audit` (its details naming the new id) in the same
    transaction; the release's id."""
    values = {
        "bento_tag": bento_tag,
        "model_tags": list(model_tags),
        "config_digest": config_digest,
        "config": dict(config),
        "parent_id": parent_id,
        "created_at": to_utc(created_at),
        "created_by": created_by,
    }
    with engine.begin() as connection:
        key = connection.execute(insert(releases).values(**values)).inserted_primary_key
        assert key is not None  # an INSERT into a table with a primary key always has one
        release_id = int(key[0])
        if audit is not None:
            details = {**(audit.details or {}), "release_id": release_id}
            append_in(connection, [replace(audit, details=details)], now=audit.ts)
    return release_id


def get_release(engine: Engine, release_id: int) -> ReleaseRecord | None:
    """The release `release_id` (None when there is none)."""
    with engine.connect() as connection:
        row = connection.execute(select(releases).where(_c.id == release_id)).mappings().first()
    return None if row is None else _record(row)


def list_releases(engine: Engine, *, limit: int | None = None) -> list[ReleaseRecord]:
    """Releases, newest first (at most `limit`)."""
    statement = select(releases).order_by(_c.id.desc()).limit(limit)
    with engine.connect() as connection:
        return [_record(row) for row in connection.execute(statement).mappings()]


def latest_release(engine: Engine) -> ReleaseRecord | None:
    """The newest release (the parent of the next one), None before the first."""
    found = list_releases(engine, limit=1)
    return found[0] if found else None


def _record(row: RowMapping) -> ReleaseRecord:
    return ReleaseRecord(
        id=int(row["id"]),
        bento_tag=row["bento_tag"],
        model_tags=list(row["model_tags"]),
        config_digest=str(row["config_digest"]),
        config=dict(row["config"]),
        parent_id=row["parent_id"],
        created_at=to_utc(row["created_at"]),
        created_by=str(row["created_by"]),
    )
