"""predictions partitioned by day on PostgreSQL, request ids unique across partitions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

PostgreSQL only (SQLite keeps its one table). Under one ACCESS EXCLUSIVE lock: the request ids
are copied into `prediction_request_ids` (their global uniqueness, DESIGN.md contract 1: a
unique index on a partitioned table must include its key), the table is renamed
`predictions_legacy`, a partitioned `predictions` takes its name, columns, defaults and id
sequence, and the old table is attached as the partition of its whole past (up to the day after
its newest row) after a CHECK constraint saying so is validated, so ATTACH scans nothing more.
Then the DEFAULT partition, today's and the next days' partitions, and the triggers that keep
`prediction_request_ids` in step. Ids, rows and audit rows are unchanged (the rollup cursor
stays exact). The writer spills while the lock is held and replays after.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DAYS_AHEAD = 3
_INDEXES = {"ix_predictions_ts": "ts", "ix_predictions_client_request_id": "client_request_id"}

_TRIGGERS = (
    """CREATE FUNCTION prediction_request_ids_added() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO prediction_request_ids (request_id, ts) SELECT request_id, ts FROM added_rows;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER predictions_request_ids_added AFTER INSERT ON predictions
    REFERENCING NEW TABLE AS added_rows FOR EACH STATEMENT
    EXECUTE FUNCTION prediction_request_ids_added()""",
    """CREATE FUNCTION prediction_request_ids_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM prediction_request_ids r USING deleted_rows d WHERE r.request_id = d.request_id;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER predictions_request_ids_deleted AFTER DELETE ON predictions
    REFERENCING OLD TABLE AS deleted_rows FOR EACH STATEMENT
    EXECUTE FUNCTION prediction_request_ids_deleted()""",
)


def _sql(statement: str) -> None:
    op.get_bind().exec_driver_sql(statement)


def _midnight_after(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date() + timedelta(days=1), time(), UTC)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
    newest = bind.exec_driver_sql("SELECT max(ts) FROM predictions").scalar()
    _sql(
        "CREATE TABLE prediction_request_ids (request_id varchar(64) NOT NULL, "
        "ts timestamptz NOT NULL, CONSTRAINT pk_prediction_request_ids PRIMARY KEY (request_id))"
    )
    _sql("INSERT INTO prediction_request_ids (request_id, ts) SELECT request_id, ts FROM predictions")
    _sql("CREATE INDEX ix_prediction_request_ids_ts ON prediction_request_ids (ts)")

    _sql("ALTER TABLE predictions RENAME TO predictions_legacy")
    # Its own key and unique constraint give way to the partitioned table's (built on attach).
    _sql("ALTER TABLE predictions_legacy DROP CONSTRAINT pk_predictions")
    _sql("ALTER TABLE predictions_legacy DROP CONSTRAINT uq_predictions_request_id")
    for index in _INDEXES:
        _sql(f"ALTER INDEX {index} RENAME TO {index.replace('predictions', 'predictions_legacy')}")
    _sql("CREATE TABLE predictions (LIKE predictions_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (ts)")
    _sql("ALTER SEQUENCE predictions_id_seq OWNED BY predictions.id")
    _sql("ALTER TABLE predictions ADD CONSTRAINT pk_predictions PRIMARY KEY (id, ts)")
    _sql("CREATE INDEX ix_predictions_request_id ON predictions (request_id)")
    for index, column in _INDEXES.items():
        _sql(f"CREATE INDEX {index} ON predictions ({column})")

    today = datetime.now(UTC)
    first_day = _midnight_after(today) - timedelta(days=1)
    if newest is None:
        _sql("DROP TABLE predictions_legacy")
    else:
        bound = _midnight_after(newest)
        _sql(
            f"ALTER TABLE predictions_legacy ADD CONSTRAINT ck_predictions_legacy_ts "
            f"CHECK (ts < '{bound.isoformat()}') NOT VALID"
        )
        _sql("ALTER TABLE predictions_legacy VALIDATE CONSTRAINT ck_predictions_legacy_ts")
        _sql(
            "ALTER TABLE predictions ATTACH PARTITION predictions_legacy "
            f"FOR VALUES FROM (MINVALUE) TO ('{bound.isoformat()}')"
        )
        _sql("ALTER TABLE predictions_legacy DROP CONSTRAINT ck_predictions_legacy_ts")
        first_day = max(first_day, bound)
    _sql("CREATE TABLE predictions_default PARTITION OF predictions DEFAULT")
    day = first_day
    while day <= _midnight_after(today) + timedelta(days=DAYS_AHEAD - 1):
        after = day + timedelta(days=1)
        _sql(
            f"CREATE TABLE predictions_p{day:%Y%m%d} PARTITION OF predictions "
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{after.isoformat()}')"
        )
        day = after
    for statement in _TRIGGERS:
        _sql(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _sql("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE")
    _sql("CREATE TABLE predictions_single (LIKE predictions INCLUDING DEFAULTS)")
    _sql("INSERT INTO predictions_single SELECT * FROM predictions ORDER BY id")
    _sql("ALTER SEQUENCE predictions_id_seq OWNED BY predictions_single.id")
    _sql("DROP TABLE predictions CASCADE")
    _sql("DROP FUNCTION prediction_request_ids_added(), prediction_request_ids_deleted()")
    _sql("DROP TABLE prediction_request_ids")
    _sql("ALTER TABLE predictions_single RENAME TO predictions")
    _sql("ALTER TABLE predictions ADD CONSTRAINT pk_predictions PRIMARY KEY (id)")
    _sql("ALTER TABLE predictions ADD CONSTRAINT uq_predictions_request_id UNIQUE (request_id)")
    for index, column in _INDEXES.items():
        _sql(f"CREATE INDEX {index} ON predictions ({column})")
