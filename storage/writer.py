"""Bulk writers: prediction records (idempotent on request_id) and monitor results (upserts)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, tuple_
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.engine import is_sqlite
from storage.schema import monitor_results, predictions

PREDICTION_COLUMNS: tuple[str, ...] = tuple(c.name for c in predictions.columns if c.name != "id")
_JSON_POSITIONS = tuple(
    i for i, name in enumerate(PREDICTION_COLUMNS) if name in ("probabilities", "features")
)
MONITOR_RESULT_KEY = (
    "monitor",
    "metric",
    "model_name",
    "model_version",
    "tenant",
    "window_start",
    "window_end",
)


def to_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def write_predictions(engine: Engine, records: Sequence[Mapping[str, Any]]) -> int:
    """Insert records in one round trip, ignoring replayed request_ids; returns rows added."""
    if not records:
        return 0
    rows = [_prediction_row(record) for record in records]
    if is_sqlite(engine):
        return _write_sqlite(engine, rows)
    return _write_postgres_copy(engine, rows)


def _prediction_row(record: Mapping[str, Any]) -> dict[str, Any]:
    row = {column: record.get(column) for column in PREDICTION_COLUMNS}
    ts = row["ts"]
    if ts is None:
        raise ValueError(f"prediction record {row['request_id']!r} has no ts")
    row["ts"] = to_utc(datetime.fromisoformat(ts) if isinstance(ts, str) else ts)
    return row


def _write_sqlite(engine: Engine, rows: list[dict[str, Any]]) -> int:
    statement = sqlite_insert(predictions).on_conflict_do_nothing(index_elements=["request_id"])
    with engine.begin() as connection:
        result = connection.execute(statement, rows)
    return max(result.rowcount, 0)


def _write_postgres_copy(engine: Engine, rows: list[dict[str, Any]]) -> int:
    """COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING."""
    columns = ", ".join(PREDICTION_COLUMNS)
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _incoming_predictions "
                "(LIKE predictions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cursor.copy(f"COPY _incoming_predictions ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(_copy_values(row))
            cursor.execute(
                f"INSERT INTO predictions ({columns}) SELECT {columns} "
                "FROM _incoming_predictions ON CONFLICT (request_id) DO NOTHING"
            )
            return max(cursor.rowcount, 0)


def _copy_values(row: dict[str, Any]) -> list[Any]:
    values = [row[name] for name in PREDICTION_COLUMNS]
    for position in _JSON_POSITIONS:
        if values[position] is not None:
            values[position] = json.dumps(values[position], separators=(",", ":"))
    return values


def upsert_monitor_results(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace rows with the same key (one transaction: all or nothing)."""
    if not rows:
        return
    normalized = [_monitor_row(row) for row in rows]
    keys = [tuple(row[k] for k in MONITOR_RESULT_KEY) for row in normalized]
    key_columns = [monitor_results.c[k] for k in MONITOR_RESULT_KEY]
    with engine.begin() as connection:
        for chunk_start in range(0, len(keys), 200):
            chunk = keys[chunk_start : chunk_start + 200]
            connection.execute(delete(monitor_results).where(and_(tuple_(*key_columns).in_(chunk))))
        connection.execute(insert(monitor_results), normalized)


def _monitor_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out.setdefault("details", None)
    out.setdefault("threshold", None)
    out.setdefault("computed_at", datetime.now(UTC))
    for column in ("window_start", "window_end", "computed_at"):
        out[column] = to_utc(out[column])
    return out
