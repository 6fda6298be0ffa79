"""The audit log (DESIGN.md contract 4): append events in sealed blocks, verify the chain.

Each append is one transaction that inserts the events and seals them as one block: the block
names its id range and row count and stores the hash of its rows and the previous block's hash,
so changing, deleting, inserting or reordering a row breaks its block, and changing a block
breaks the next one. Appends are serialised (a PostgreSQL advisory lock; SQLite has one writer
at a time), so blocks follow each other in id order. Triggers refuse UPDATE and DELETE on both
tables (migration 0002); the writer's database role needs only INSERT and SELECT.

Retention (`storage.retention`) drops old `predictions` rows, never audit rows: a prune takes the
predictions of whole sealed blocks, a prefix of the chain, and records itself as an audit event
(`Prune`) before it deletes; `verify` reports those blocks as pruned and checks the hashes the
prune recorded against the chain.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, CursorResult, Engine, func, insert, literal, select

from core.contracts import AUDIT_FIELDS, AuditEvent, AuditKind
from core.timeutil import iso_utc, to_utc
from storage.schema import AUDIT_ACTIONS, audit_blocks, audit_log, predictions

GENESIS = "0" * 64  # the previous hash of the first block
ROW_COLUMNS: tuple[str, ...] = ("id", *AUDIT_FIELDS)  # what a row's hash covers, in order
_TS = ROW_COLUMNS.index("ts")
_CONFIDENCE = ROW_COLUMNS.index("confidence")
_DETAILS = ROW_COLUMNS.index("details")
# Any constant shared by all writers of one database: the lock that serialises appends.
_APPEND_LOCK = 0x5E12_A0D1


PRUNE: AuditKind = "prune"  # the kind of a prune's audit event


@dataclass(frozen=True)
class Prune:
    """A prune as its audit event records it: the blocks whose predictions it dropped (ids and
    hashes of the first and last, the last one's last audit row; None when no block was old
    enough or predictions are kept), the cutoffs, and the rows it set out to delete per table."""

    first_block: int | None
    last_block: int | None
    first_block_hash: str | None
    last_block_hash: str | None
    last_id: int | None  # the last audit row of last_block
    predictions_before: str | None  # ISO times; None: that table is kept
    monitor_results_before: str | None
    predictions: int
    monitor_results: int


@dataclass(frozen=True)
class PrunedRange:
    """The blocks 1..last_block whose predictions prunes dropped, over all prunes."""

    last_block: int
    predictions: int
    prunes: int


@dataclass(frozen=True)
class Verification:
    """What `verify` found: the blocks and rows checked, the first broken block if any, and the
    blocks whose predictions were pruned (not tampered with)."""

    blocks: int
    rows: int
    broken_block: int | None = None
    reason: str | None = None
    pruned: PrunedRange | None = None

    @property
    def ok(self) -> bool:
        return self.broken_block is None and self.reason is None


def append(engine: Engine, events: Sequence[AuditEvent], *, now: datetime) -> int | None:
    """Append `events` as one sealed block in a transaction of its own; the block's id."""
    with engine.begin() as connection:
        return append_in(connection, events, now=now)


def append_in(connection: Connection, events: Sequence[AuditEvent], *, now: datetime) -> int | None:
    """Append `events` as one sealed block inside the caller's transaction; the block's id."""
    if not events:
        return None
    lock_appends(connection)
    # Inserting first takes SQLite's write lock before the previous block is read.
    ids = [_insert(connection, event) for event in events]
    return _seal(connection, ids[0], ids[-1], now)


def lock_appends(connection: Connection) -> None:
    """Serialise appends to the chain until the caller's transaction ends (PostgreSQL; SQLite
    has one writer at a time). Take it before anything the block will cover is written."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_PG_LOCK, (_APPEND_LOCK,))


def lock_appends_in(cursor: Any) -> None:
    """`lock_appends` on a PostgreSQL driver cursor (psycopg), inside its transaction."""
    cursor.execute(_PG_LOCK, (_APPEND_LOCK,))


_PG_LOCK = "SELECT pg_advisory_xact_lock(%s)"


def audit_predictions(connection: Connection, after_id: int, *, now: datetime) -> int | None:
    """Audit the `predictions` rows above `after_id` (those the caller's transaction wrote, under
    `lock_appends`) as one sealed block, in the same transaction: as durable as they are."""
    if connection.dialect.name == "postgresql":
        parameters = {"after_id": after_id, "genesis": GENESIS, "sealed_at": to_utc(now)}
        block = connection.exec_driver_sql(_PG_AUDIT_ANY_TS, parameters).scalar()
        return None if block is None else int(block)
    p = predictions.c
    source = (
        select(literal("prediction"), *(p[column] for column in _FROM_PREDICTIONS.values()))
        .where(p.id > after_id)
        .order_by(p.id)
    )
    statement = insert(audit_log).from_select(["kind", *_FROM_PREDICTIONS], source)
    ids = connection.execute(statement.returning(audit_log.c.id)).scalars().all()
    return _seal(connection, min(ids), max(ids), now) if ids else None


def audit_predictions_in(
    cursor: Any, after_id: int, *, now: datetime, between: tuple[datetime, datetime] | None = None
) -> int | None:
    """`audit_predictions` on a PostgreSQL driver cursor (psycopg): one statement, no
    SQLAlchemy on the prediction log's busiest path. `between`: the first and last `ts` of the
    rows written, a bound that lets a partitioned `predictions` read only their partitions
    (without it, `id > after_id` probes every day's index)."""
    parameters: dict[str, Any] = {
        "after_id": after_id,
        "genesis": GENESIS,
        "sealed_at": to_utc(now),
    }
    if between is None:
        cursor.execute(_PG_AUDIT_ANY_TS, parameters)
    else:
        parameters["first_ts"], parameters["last_ts"] = between
        # Planned for its values each time (not prepared): the plan then holds and locks only the
        # partitions the batch wrote, not every day of the table (a generic plan does).
        cursor.execute(_PG_AUDIT_BETWEEN, parameters, prepare=False)
    row = cursor.fetchone()
    return None if row is None else int(row[0])


def _seal(connection: Connection, first_id: int, last_id: int, now: datetime) -> int:
    """Seal the audit rows first_id..last_id as the chain's next block; the block's id."""
    previous = connection.execute(
        select(audit_blocks.c.block_hash).order_by(audit_blocks.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    row_count, rows_hash = _count_and_hash(connection, first_id, last_id)
    prev_hash = previous or GENESIS
    block = {
        "first_id": first_id,
        "last_id": last_id,
        "row_count": row_count,
        "rows_hash": rows_hash,
        "prev_hash": prev_hash,
        "block_hash": block_hash(prev_hash, first_id, last_id, row_count, rows_hash),
        "sealed_at": to_utc(now),
    }
    return _inserted_id(connection.execute(insert(audit_blocks).values(**block)))


def verify(engine: Engine, since: datetime | None = None) -> Verification:
    """Recompute the chain (from the first block sealed at or after `since`, trusting its link)."""
    with engine.connect() as connection:
        # Rows and their block commit together, but each read sees the newest commits: rows
        # appended after this point are left to the next verification, not taken for strays.
        ceiling = _last_row_id(connection)
        blocks = _blocks(connection, since)
        checked_rows = 0
        previous: str | None = None
        covered_to: int | None = None
        for block in blocks:
            problem = _check(connection, block, previous, covered_to)
            if problem is not None:
                return Verification(len(blocks), checked_rows, block["id"], problem)
            checked_rows += block["row_count"]
            previous, covered_to = block["block_hash"], block["last_id"]
        stray = _rows_after(connection, covered_to, ceiling) if blocks or since is None else 0
        if stray:
            return Verification(
                len(blocks), checked_rows, None, f"{stray} rows after the last block"
            )
        disagreeing = _predictions_disagreeing(connection)
        if disagreeing is not None:
            return Verification(len(blocks), checked_rows, None, disagreeing)
        recorded = prunes(connection)
        misnamed = _prune_misnaming(connection, recorded)
        if misnamed is not None:
            return Verification(len(blocks), checked_rows, None, misnamed)
        return Verification(len(blocks), checked_rows, pruned=_pruned_range(recorded))


def prunes(connection: Connection) -> list[Prune]:
    """The prunes the audit log records, oldest first."""
    c = audit_log.c
    statement = select(c.details).where(AUDIT_ACTIONS, c.kind == PRUNE).order_by(c.id)
    return [Prune(**details) for details in connection.execute(statement).scalars()]


def _pruned_range(recorded: Sequence[Prune]) -> PrunedRange | None:
    last_blocks = [p.last_block for p in recorded if p.last_block is not None]
    if not last_blocks:
        return None
    dropped = sum(p.predictions for p in recorded)
    return PrunedRange(max(last_blocks), dropped, len(recorded))


def _prune_misnaming(connection: Connection, recorded: Sequence[Prune]) -> str | None:
    """Why a prune's event does not name blocks of this chain (their ids with other hashes),
    or None: the predictions it dropped are accounted for by blocks the chain still holds."""
    for prune in recorded:
        for block, recorded_hash in (
            (prune.first_block, prune.first_block_hash),
            (prune.last_block, prune.last_block_hash),
        ):
            if block is None:
                continue
            found = connection.execute(
                select(audit_blocks.c.block_hash).where(audit_blocks.c.id == block)
            ).scalar_one_or_none()
            if found != recorded_hash:
                return f"a prune names block {block} with a hash the chain does not hold"
    return None


def _predictions_disagreeing(connection: Connection) -> str | None:
    """Why the `predictions` rows do not say what the audit log recorded, or None: a decision,
    confidence, tenant, model or time changed since, or a row the log never wrote."""
    p, a = predictions.c, audit_log.c
    audited = audit_log.alias("audited")
    changed = (
        select(p.request_id)
        .join(audited, (audited.c.request_id == p.request_id) & (audited.c.kind == "prediction"))
        .where(
            p.predicted_class.is_distinct_from(audited.c.decision)
            | p.confidence.is_distinct_from(audited.c.confidence)
            | p.tenant.is_distinct_from(audited.c.tenant)
            | p.endpoint.is_distinct_from(audited.c.endpoint)
            | p.model_name.is_distinct_from(audited.c.model_name)
            | p.model_version.is_distinct_from(audited.c.model_version)
            | p.input_hmac.is_distinct_from(audited.c.input_hmac)
        )
        .order_by(p.id)
        .limit(1)
    )
    first = connection.execute(changed).scalar_one_or_none()
    if first is not None:
        return f"the prediction {first} no longer says what the audit log recorded"
    unaudited = (
        select(p.request_id)
        .where(~select(a.id).where(a.request_id == p.request_id).exists())
        .order_by(p.id)
        .limit(1)
    )
    first = connection.execute(unaudited).scalar_one_or_none()
    if first is not None:
        return f"the prediction {first} has no audit row: it was not written by the log"
    return None


def _check(
    connection: Connection, block: dict[str, Any], previous: str | None, covered_to: int | None
) -> str | None:
    """Why `block` is broken, or None."""
    if previous is not None and block["prev_hash"] != previous:
        return "its previous hash is not the hash of the block before it"
    if block["block_hash"] != block_hash(
        block["prev_hash"],
        block["first_id"],
        block["last_id"],
        block["row_count"],
        block["rows_hash"],
    ):
        return "its own hash does not match its contents"
    if covered_to is not None and _count_between(connection, covered_to, block["first_id"]):
        return "rows were inserted before it, between it and the block before"
    count, rows_hash = _count_and_hash(connection, block["first_id"], block["last_id"])
    if count != block["row_count"]:
        return f"it sealed {block['row_count']} rows, {count} are there"
    if rows_hash != block["rows_hash"]:
        return "a row in it was changed or reordered"
    return None


# PostgreSQL hashes a block's rows itself: the writer then neither reads them back nor holds the
# GIL to hash them (which cost the service's p99, docs/benchmarks.md session 7). The canonical
# row is a JSON array: float8 prints its shortest exact text, jsonb sorts the details' keys.
_PG_ROWS_HASH = """encode(sha256(convert_to(coalesce(string_agg(json_build_array(
    id, kind, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), request_id,
    tenant, endpoint, model_name, model_version, decision, confidence, input_hmac, actor,
    details::jsonb
)::text || chr(10), '' ORDER BY id), ''), 'UTF8')), 'hex')"""
_PG_BLOCK_HASH = f"""
SELECT count(*), {_PG_ROWS_HASH}
FROM audit_log WHERE id >= %s AND id <= %s
"""
# A prediction's audit row: kind "prediction", then these audit_log columns from these
# predictions columns.
_FROM_PREDICTIONS = {
    **{column: column for column in AUDIT_FIELDS if column in predictions.c},
    "decision": "predicted_class",
}


# One statement audits a batch of predictions and seals it (the writer's busiest path: each
# statement more cost the service ~1 % of its throughput). `block_hash` is Python's, in SQL.
def _pg_audit_predictions(ts_condition: str) -> str:
    return f"""
WITH added AS (
    INSERT INTO audit_log (kind, {", ".join(_FROM_PREDICTIONS)})
    SELECT 'prediction', {", ".join(_FROM_PREDICTIONS.values())}
    FROM predictions WHERE id > %(after_id)s{ts_condition} ORDER BY id
    RETURNING {", ".join(ROW_COLUMNS)}
), sealed AS (
    SELECT count(*) AS row_count, min(id) AS first_id, max(id) AS last_id,
        {_PG_ROWS_HASH} AS rows_hash,
        coalesce((SELECT block_hash FROM audit_blocks ORDER BY id DESC LIMIT 1), %(genesis)s)
            AS prev_hash
    FROM added
)
INSERT INTO audit_blocks
    (first_id, last_id, row_count, rows_hash, prev_hash, block_hash, sealed_at)
SELECT first_id, last_id, row_count, rows_hash, prev_hash,
    encode(sha256(convert_to(concat_ws('|', prev_hash, first_id, last_id, row_count, rows_hash),
        'UTF8')), 'hex'),
    %(sealed_at)s
FROM sealed WHERE row_count > 0
RETURNING id
"""


_PG_AUDIT_ANY_TS = _pg_audit_predictions("")
_PG_AUDIT_BETWEEN = _pg_audit_predictions(" AND ts >= %(first_ts)s AND ts <= %(last_ts)s")


def _count_and_hash(connection: Connection, first_id: int, last_id: int) -> tuple[int, str]:
    """How many rows first_id..last_id holds, and their hash (PostgreSQL's own, or Python's)."""
    if connection.dialect.name == "postgresql":
        count, digest = connection.exec_driver_sql(_PG_BLOCK_HASH, (first_id, last_id)).one()
        return int(count), str(digest)
    rows = _rows(connection, first_id, last_id)
    return len(rows), hash_rows(rows)


def hash_rows(rows: Sequence[Sequence[Any]]) -> str:
    """SHA-256 over the rows' canonical forms (rows as `ROW_COLUMNS`), in id order."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical(row))
        digest.update(b"\n")
    return digest.hexdigest()


def block_hash(prev_hash: str, first_id: int, last_id: int, row_count: int, rows_hash: str) -> str:
    return hashlib.sha256(
        f"{prev_hash}|{first_id}|{last_id}|{row_count}|{rows_hash}".encode()
    ).hexdigest()


def canonical(row: Sequence[Any]) -> bytes:
    """A row (as `ROW_COLUMNS`, in the types either driver returns) as a JSON array: its time
    in UTC, its confidence exact, its details with sorted keys."""
    values = list(row)
    values[0] = int(values[0])
    ts = values[_TS]
    values[_TS] = iso_utc(datetime.fromisoformat(ts) if isinstance(ts, str) else ts)
    confidence = values[_CONFIDENCE]
    if confidence is not None:
        number = float(confidence)
        values[_CONFIDENCE] = number.hex() if math.isfinite(number) else None
    details = values[_DETAILS]
    if isinstance(details, str):  # SQLite hands JSON back as its text
        details = json.loads(details)
    values[_DETAILS] = (
        None if details is None else json.dumps(details, sort_keys=True, separators=(",", ":"))
    )
    return orjson.dumps(values, default=str)


def _insert(connection: Connection, event: AuditEvent) -> int:
    values = asdict(event)
    values["ts"] = to_utc(event.ts)
    return _inserted_id(connection.execute(insert(audit_log).values(**values)))


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has it
    return int(key[0])


def _rows(connection: Connection, first_id: int, last_id: int) -> list[Sequence[Any]]:
    """The rows first_id..last_id as the driver returns them (SQLAlchemy's result processing
    cost the writer ~40 µs a row, more than writing the prediction)."""
    placeholder = "?" if connection.dialect.name == "sqlite" else "%s"
    sql = (
        f"SELECT {', '.join(ROW_COLUMNS)} FROM audit_log "
        f"WHERE id >= {placeholder} AND id <= {placeholder} ORDER BY id"
    )
    return list(connection.exec_driver_sql(sql, (first_id, last_id)).all())


def _blocks(connection: Connection, since: datetime | None) -> list[dict[str, Any]]:
    statement = select(audit_blocks).order_by(audit_blocks.c.id)
    if since is not None:
        statement = statement.where(audit_blocks.c.sealed_at >= to_utc(since))
    return [dict(row._mapping) for row in connection.execute(statement)]


def _count_between(connection: Connection, after_id: int, before_id: int) -> int:
    c = audit_log.c
    statement = select(func.count()).where(c.id > after_id, c.id < before_id)
    return int(connection.execute(statement).scalar_one())


def _last_row_id(connection: Connection) -> int:
    return int(connection.execute(select(func.coalesce(func.max(audit_log.c.id), 0))).scalar_one())


def _rows_after(connection: Connection, after_id: int | None, ceiling: int) -> int:
    """Audit rows after `after_id` up to `ceiling` (the newest row when verification began)."""
    statement = select(func.count()).select_from(audit_log).where(audit_log.c.id <= ceiling)
    if after_id is not None:
        statement = statement.where(audit_log.c.id > after_id)
    return int(connection.execute(statement).scalar_one())


def iter_events(engine: Engine, request_id: str) -> Iterator[dict[str, Any]]:
    """The audit rows of one request id, oldest first."""
    statement = (
        select(audit_log).where(audit_log.c.request_id == request_id).order_by(audit_log.c.id)
    )
    with engine.connect() as connection:
        for row in connection.execute(statement):
            yield dict(row._mapping)
