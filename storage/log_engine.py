"""The prediction log's engine: tuned for one writer thread doing bulk COPYs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from storage.engine import create_store_engine, is_sqlite

# PostgreSQL: give up on a hanging host in bounded time (the URL's own values take precedence).
POSTGRES_CONNECT_ARGS = {"connect_timeout": 5, "tcp_user_timeout": 10_000}


def prediction_log_engine(database_url: str) -> Engine:
    """An engine for the log's writer: bounded connects, no pings, autocommit on PostgreSQL."""
    extra: dict[str, Any] = {}
    if not is_sqlite(database_url):
        given = make_url(database_url).query
        extra["connect_args"] = {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in given}
        # No ping per batch (a round trip each): a dead connection fails its batch,
        # which is spilled and replayed like any other failed write.
        extra["pool_pre_ping"] = False
        # A batch is one COPY, atomic on its own: autocommit spares the BEGIN and
        # COMMIT round trips (~100 µs of the writer's CPU a batch, of ~270 for one row).
        extra["isolation_level"] = "AUTOCOMMIT"
    return create_store_engine(database_url, **extra)
