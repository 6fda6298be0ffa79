"""Reads of `monitor_results` (runs write theirs with `storage.writer.upsert_monitor_results`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from core.timeutil import to_utc
from storage.schema import monitor_results

_c = monitor_results.c
# A stored row as the monitors read it back: every column but the surrogate id (the contract's
# keys, `details` and `computed_at`), in the table's order.
ROW_COLUMNS: tuple[str, ...] = tuple(c.name for c in monitor_results.columns if c.name != "id")


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


def window_runs(
    engine: Engine, monitor: str, after: datetime
) -> list[tuple[datetime, datetime, datetime]]:
    """(start, end, newest computed_at) of each window of `monitor` ending after `after`."""
    statement = (
        select(_c.window_start, _c.window_end, func.max(_c.computed_at))
        .where(_c.monitor == monitor, _c.window_end > to_utc(after))
        .group_by(_c.window_start, _c.window_end)
    )
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [(to_utc(start), to_utc(end), to_utc(computed)) for start, end, computed in rows]


def results_ending_after(engine: Engine, monitor: str, after: datetime) -> list[dict[str, Any]]:
    """Every row of `monitor` whose window ends after `after`, oldest window first."""
    statement = (
        select(*(_c[name] for name in ROW_COLUMNS))
        .where(_c.monitor == monitor, _c.window_end > to_utc(after))
        .order_by(_c.window_end, _c.id)
    )
    return _rows(engine, statement)


def window_results(
    engine: Engine,
    start: datetime,
    end: datetime,
    model_name: str,
    model_version: str,
    monitors: Sequence[str],
) -> list[dict[str, Any]]:
    """The rows of `monitors` for one model version over exactly the window [start, end)."""
    statement = (
        select(*(_c[name] for name in ROW_COLUMNS))
        .where(
            _c.monitor.in_(list(monitors)),
            _c.window_start == to_utc(start),
            _c.window_end == to_utc(end),
            _c.model_name == model_name,
            _c.model_version == model_version,
        )
        .order_by(_c.id)
    )
    return _rows(engine, statement)


def _rows(engine: Engine, statement: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(statement).mappings().all()
    return [
        {
            **row,
            "window_start": to_utc(row["window_start"]),
            "window_end": to_utc(row["window_end"]),
            "computed_at": to_utc(row["computed_at"]),
        }
        for row in rows
    ]
