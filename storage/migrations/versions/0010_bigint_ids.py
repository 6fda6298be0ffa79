"""ids that grow with traffic widened to BIGINT on PostgreSQL

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

A 4-byte id runs out at 2^31-1: at 100M predictions a day, `predictions.id` in ~21 days, and
`audit_log.id` with it (one audit row a prediction). Widened here: those two ids and their
sequences, the columns that store them (`audit_blocks.first_id`/`last_id`,
`rollup_cursor.last_id`), and the ids whose sequences advance with traffic too (an audit block
per batch, rollup rows per minute and key, monitor results rewritten at each run). Ids of
releases, rollouts and model versions grow with human actions: left as they are.

PostgreSQL rewrites each table (and every partition of `predictions`) and its indexes, under an
ACCESS EXCLUSIVE lock taken in the order the writer takes them (the audit chain's advisory lock
first): the writer spills meanwhile and replays after. Measured in docs/scaling.md.

SQLite: nothing to do. An INTEGER PRIMARY KEY is the rowid, a 64-bit integer, and a column
declared INTEGER stores up to 8 bytes already.

The downgrade narrows back to integer, and refuses (before changing anything) when a column or
a sequence already holds a value above 2^31-1.
"""

from __future__ import annotations

from alembic import op

from storage.audit import lock_appends

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INT4_MAX = 2**31 - 1
# table -> its columns widened; the tables with a sequence own it through their `id`.
# In the order the fold (cursor, predictions, rollups) and the writer (predictions, audit rows,
# blocks) lock them, so that the migration waits for them rather than deadlocks.
COLUMNS: dict[str, tuple[str, ...]] = {
    "rollup_cursor": ("last_id",),
    "predictions": ("id",),
    "prediction_rollups": ("id",),
    "audit_log": ("id",),
    "audit_blocks": ("id", "first_id", "last_id"),
    "monitor_results": ("id",),
}
SEQUENCES = ("predictions", "audit_log", "audit_blocks", "prediction_rollups", "monitor_results")


def _sql(statement: str) -> None:
    op.get_bind().exec_driver_sql(statement)


def _lock() -> None:
    """The chain's lock, then every table: no writer is left holding one the other waits for."""
    lock_appends(op.get_bind())  # what writers take before touching predictions
    _sql(f"LOCK TABLE {', '.join(COLUMNS)} IN ACCESS EXCLUSIVE MODE")


def _sequence(table: str) -> str:
    name = op.get_bind().exec_driver_sql(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar()
    if name is None:
        raise RuntimeError(f"{table}.id owns no sequence: is this store migrated by servewatch?")
    return str(name)


def _retype(kind: str) -> None:
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} TYPE {kind}" for column in columns)
        _sql(f"ALTER TABLE {table} {changes}")  # one rewrite a table, all its columns at once
    for table in SEQUENCES:
        _sql(f"ALTER SEQUENCE {_sequence(table)} AS {kind}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's integers are 64-bit already (see the docstring)
    _lock()
    _retype("bigint")


def _too_wide() -> list[str]:
    """The columns and sequences holding a value that integer cannot."""
    bind = op.get_bind()
    found = []
    for table, columns in COLUMNS.items():
        highest = ", ".join(f"max({column})" for column in columns)
        values = bind.exec_driver_sql(f"SELECT {highest} FROM {table}").one()
        found += [
            f"{table}.{column} = {value}"
            for column, value in zip(columns, values, strict=True)
            if value is not None and value > INT4_MAX
        ]
    for table in SEQUENCES:
        sequence = _sequence(table)
        value = bind.exec_driver_sql(f"SELECT last_value FROM {sequence}").scalar_one()
        if value > INT4_MAX:
            found.append(f"{sequence} = {value}")
    return found


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _lock()
    if too_wide := _too_wide():
        raise RuntimeError(
            "cannot narrow ids back to integer, values above 2^31-1: " + "; ".join(too_wide)
        )
    _retype("integer")
