"""Reads of `monitor_results` (runs write theirs with `storage.writer.upsert_monitor_results`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from core.timeutil import to_utc
from storage.schema import monitor_results

_c = monitor_results.c


def windows_ending_after(
    engine: Engine, monitor: str, after: datetime
) -> list[tuple[datetime, datetime]]:
    """Distinct (start, end) of the windows of `monitor` with rows, ending after `after`."""
    statement = (
        select(_c.window_start, _c.window_end)
        .where(_c.monitor == monitor, _c.window_end > to_utc(after))
        .distinct()
    )
    with engine.connect() as connection:
        return [(start, end) for start, end in connection.execute(statement).all()]
