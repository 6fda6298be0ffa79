"""Bulk writers: prediction records (idempotent on request_id) and monitor results (upserts)."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg.errors import UniqueViolation
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    and_,
    delete,
    func,
    insert,
    select,
    tuple_,
)

from core.contracts import PREDICTION_COLUMNS
from core.timeutil import to_utc
from storage.audit import audit_predictions, audit_predictions_in, lock_appends_in
from storage.engine import is_sqlite
from storage.partitions import ensure_for_batch, layout_partitioned
from storage.schema import monitor_results, predictions

REQUEST_ID = PREDICTION_COLUMNS.index("request_id")  # a row's request id is row[REQUEST_ID]
_TS = PREDICTION_COLUMNS.index("ts")
_PROBABILITIES = PREDICTION_COLUMNS.index("probabilities")
_FEATURES = PREDICTION_COLUMNS.index("features")
_COLUMN_LIST = ", ".join(PREDICTION_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT INTO predictions ({_COLUMN_LIST}) "
    f"VALUES ({', '.join('?' * len(PREDICTION_COLUMNS))}) ON CONFLICT (request_id) DO NOTHING"
)
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_values_of = operator.itemgetter(*PREDICTION_COLUMNS)


def probabilities_json(value: Any) -> str | None:
    """JSON of a {class: probability} map by orjson: the shortest text that reads back as the
    same float, 6x faster than `json` (whose float repr dominates); non-ASCII class names stay
    UTF-8. Other values, and maps orjson would not write faithfully, as `json` writes them."""
    if type(value) is dict:
        # orjson writes NaN and infinities as null: those (and what it refuses) go to `json`,
        # so that a broken value reaches the store as it is, not silently as null.
        try:
            if math.isfinite(sum(value.values())):
                return orjson.dumps(value).decode()
        # Not numbers, or keys or ints orjson refuses (its JSONEncodeError is a TypeError);
        # an int too large for a float (OverflowError); Decimal("sNaN") (ValueError).
        except (TypeError, ValueError, OverflowError):
            pass
    return None if value is None else _dumps(value)


def _utc(value: Any, request_id: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"prediction record {request_id!r} has no valid ts")
    return to_utc(value)


def _encode_json(values: list[Any]) -> None:
    values[_PROBABILITIES] = probabilities_json(values[_PROBABILITIES])
    if values[_FEATURES] is not None:
        values[_FEATURES] = _dumps(values[_FEATURES])


# A prediction record, as a mapping of columns or as a row in `PREDICTION_COLUMNS` order (what
# the service makes: no dict per record on its busiest path).
Record = Mapping[str, Any] | list[Any]


def prediction_row(record: Record) -> list[Any]:
    """A record's values in `PREDICTION_COLUMNS` order (missing columns None); a fresh list.
    A row of the wrong width is refused here (ValueError), before it can reach a batch."""
    if type(record) is list:
        if len(record) != len(PREDICTION_COLUMNS):
            raise ValueError(
                f"a prediction row has {len(PREDICTION_COLUMNS)} values, not {len(record)}"
            )
        return record.copy()
    try:
        return list(_values_of(record))  # every column present: the service's records
    except KeyError:
        return [record.get(column) for column in PREDICTION_COLUMNS]  # type: ignore[union-attr]


def prediction_record(record: Record) -> Mapping[str, Any]:
    """A record as a mapping of columns (rows are named by `PREDICTION_COLUMNS`)."""
    if type(record) is list:
        return dict(zip(PREDICTION_COLUMNS, record, strict=True))
    return record  # type: ignore[return-value]


def _copy_type(column: Any) -> str:
    """The PostgreSQL type whose binary form a column's values are sent in."""
    kind = column.type
    if isinstance(kind, DateTime):
        return "timestamptz" if kind.timezone else "timestamp"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, BigInteger):
        return "int8"
    if isinstance(kind, Integer):
        return "int4"
    # Strings, and JSON sent as its encoded text: the binary form of `json` is its text.
    return "text"


# Binary COPY: psycopg's C dumpers format each row, with nothing to escape, and the server
# parses no text (writer CPU 8.4 -> 5.0 µs a record against text lines made in Python;
# docs/benchmarks.md, session 5).
_COPY_TYPES = tuple(_copy_type(predictions.c[column]) for column in PREDICTION_COLUMNS)


def encode_postgres_row(record: Record) -> list[Any]:
    """The values of one record for the binary COPY, in `PREDICTION_COLUMNS` order."""
    row = prediction_row(record)
    row[_TS] = _utc(row[_TS], row[0])
    _encode_json(row)
    return row


def encode_sqlite_row(record: Record) -> list[Any]:
    """The parameters of the SQLite INSERT for one record."""
    row = encode_postgres_row(record)
    # The same text SQLAlchemy's DateTime stores on SQLite: naive UTC, always microseconds.
    row[_TS] = row[_TS].replace(tzinfo=None).isoformat(" ", "microseconds")
    return row


def prediction_encoder(engine_or_url: Engine | str) -> Callable[[Record], Any]:
    """How `write_predictions` encodes one record for this store."""
    return encode_sqlite_row if is_sqlite(engine_or_url) else encode_postgres_row


def write_predictions(
    engine: Engine,
    records: Sequence[Record],
    encoded: Sequence[Any] = (),
    *,
    now: datetime | None = None,
) -> int:
    """Insert records in one transaction, ignoring replayed request_ids; returns rows added.

    The rows added are audited in the same transaction (an `audit_log` block sealed at `now`),
    so a stored prediction always has its audit row and a refused one has none. `encoded` may
    hold the `prediction_encoder` output for a prefix of `records`, made ahead of time (the
    prediction log spreads that work between its writes); the rest is encoded here.
    """
    if not records:
        return 0
    sealed_at = now or datetime.now(UTC)
    if is_sqlite(engine):
        rows = [*encoded, *(encode_sqlite_row(r) for r in records[len(encoded) :])]
        return _write_sqlite(engine, rows, sealed_at)
    return _write_postgres_copy(engine, records, encoded, sealed_at)


def _write_sqlite(engine: Engine, rows: list[list[Any]], now: datetime) -> int:
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.executemany(_SQLITE_INSERT, rows)
            added = max(int(cursor.rowcount), 0)
        finally:
            cursor.close()
        if added:
            # One writer holds SQLite's lock: the rows just added have the highest ids, in a run.
            audit_predictions(connection, _last_prediction_id(connection) - added, now=now)
        return added


def _write_postgres_copy(
    engine: Engine, records: Sequence[Record], encoded: Sequence[list[Any]], now: datetime
) -> int:
    """COPY straight into predictions; a batch holding known request ids (a replay) fails on
    the unique index (on a partitioned store: `prediction_request_ids`, which a trigger fills
    in the same statement) and is redone through a temporary table that leaves them out.

    Each attempt is one transaction (even on the log's autocommit engine) holding the audit
    chain's lock, so the ids above the id sequence's value before the COPY are this batch's
    rows. The driver's connection is used directly: SQLAlchemy's execution machinery cost the
    writer more CPU per batch than the COPY of a hundred records.
    """
    rows = [*encoded, *(encode_postgres_row(r) for r in records[len(encoded) :])]
    # The batch's first and last times bound the audit's read to the partitions written.
    between = (min(rows, key=_ts_of)[_TS], max(rows, key=_ts_of)[_TS])
    partitioned = layout_partitioned(engine)
    if partitioned:
        ensure_for_batch(
            engine, *between, lambda: {row[_TS].astimezone(UTC).date() for row in rows}
        )
    pooled = engine.raw_connection()
    try:
        raw = pooled.driver_connection
        assert raw is not None  # a pooled connection that is checked out has its driver's
        try:
            with raw.transaction(), raw.cursor() as cursor:
                before = _lock_and_last_id(cursor)
                _copy_rows(cursor, "predictions", rows)
                audit_predictions_in(cursor, before, now=now, between=between)
            return len(rows)
        except UniqueViolation:
            pass
        return _write_postgres_ignoring_duplicates(raw, rows, now, between)
    finally:
        pooled.close()


_ts_of = operator.itemgetter(_TS)


def _copy_rows(cursor: Any, table: str, rows: Sequence[list[Any]]) -> None:
    """COPY encoded rows into `table`; psycopg sends its buffer whenever it fills, so the
    server stores one part while the next is written."""
    with cursor.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_COPY_TYPES)
        for row in rows:
            copy.write_row(row)


# The batch's rows whose request id no stored prediction has, each request id once (its first
# row), in the batch's order. Writers hold the audit chain's lock: none adds one meanwhile.
_INSERT_NEW_ON_PARTITIONS = (
    f"INSERT INTO predictions ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM ("
    f"SELECT DISTINCT ON (request_id) ctid AS at, {_COLUMN_LIST} FROM _incoming_predictions "
    "ORDER BY request_id, ctid) AS incoming WHERE NOT EXISTS (SELECT 1 FROM prediction_request_ids "
    "AS known WHERE known.request_id = incoming.request_id) ORDER BY at"
)
_INSERT_NEW = (
    f"INSERT INTO predictions ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "
    "FROM _incoming_predictions ON CONFLICT (request_id) DO NOTHING"
)


def _write_postgres_ignoring_duplicates(
    raw: Any,
    rows: Sequence[list[Any]],
    now: datetime,
    between: tuple[datetime, datetime],
) -> int:
    # Its own transaction even on an autocommit engine (the prediction log's): the temporary
    # table empties at each commit.
    with raw.transaction(), raw.cursor() as cursor:
        before = _lock_and_last_id(cursor)
        # Asked here, not cached: a spill replayed right after migration 0009 comes this way.
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('predictions')")
        partitioned = cursor.fetchone()[0] == "p"
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _incoming_predictions "
            "(LIKE predictions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        _copy_rows(cursor, "_incoming_predictions", rows)
        cursor.execute(_INSERT_NEW_ON_PARTITIONS if partitioned else _INSERT_NEW)
        added = max(int(cursor.rowcount), 0)
        audit_predictions_in(cursor, before, now=now, between=between)
        return added


def _lock_and_last_id(cursor: Any) -> int:
    """Take the audit chain's lock, then read the id sequence's last value (PostgreSQL cursor):
    every committed id is at most that, and the rows this transaction adds are above it. Not
    `max(id)`, which reads the id index of every partition."""
    lock_appends_in(cursor)
    cursor.execute("SELECT last_value - (NOT is_called)::int FROM predictions_id_seq")
    return int(cursor.fetchone()[0])


def _last_prediction_id(connection: Connection) -> int:
    statement = select(func.coalesce(func.max(predictions.c.id), 0))
    return int(connection.execute(statement).scalar_one())


# A re-run replaces a monitor's whole window for a model, so groups gone from the data go too.
RUN_SCOPE = ("monitor", "model_name", "window_start", "window_end")


def upsert_monitor_results(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace what earlier runs wrote for the same monitor, model and window (all or nothing)."""
    if not rows:
        return
    normalized = [_monitor_row(row) for row in rows]
    keys = sorted({tuple(row[k] for k in RUN_SCOPE) for row in normalized})
    key_columns = [monitor_results.c[k] for k in RUN_SCOPE]
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
