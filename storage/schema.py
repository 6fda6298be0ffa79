"""SQLAlchemy schema. `predictions` follows DESIGN.md's public contract 1; extras are nullable."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from core.contracts import PREDICTION_ROW, ColumnKind, PredictionColumn

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_TYPES: dict[ColumnKind, Any] = {
    "timestamp": DateTime(timezone=True),
    "float": Float,
    "int": Integer,
    "json": JSON,
}


# Ids that grow with traffic (migration 0010): BIGINT on PostgreSQL; INTEGER on SQLite, where
# an INTEGER PRIMARY KEY is the 64-bit rowid (a BIGINT one would not autoincrement).
BIG_ID: Any = BigInteger().with_variant(Integer, "sqlite")


def _column(spec: PredictionColumn) -> Column[Any]:
    if spec.kind == "text":
        kind: Any = String(spec.length) if spec.length else Text
    else:
        kind = _TYPES[spec.kind]
    return Column(
        spec.name,
        kind,
        nullable=spec.nullable,
        unique=spec.unique or None,
        index=spec.indexed or None,
    )


predictions = Table(
    "predictions",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    *(_column(spec) for spec in PREDICTION_ROW),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("monitor", String(32), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("status", String(24), nullable=False),
    Column("n", Integer, nullable=False),
    Column("details", JSON, nullable=True),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "monitor",
        "metric",
        "model_name",
        "model_version",
        "tenant",
        "window_start",
        "window_end",
        name="uq_monitor_results_key",
    ),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("snapshot_id", String(128), nullable=False),
    Column("preprocessing_version", String(32), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    UniqueConstraint("model_name", "model_version", name="uq_model_versions_name_version"),
)

# Contract 4: append-only (triggers refuse UPDATE and DELETE, see the migration), chained in
# blocks: each block covers the rows with ids first_id..last_id and hashes them with the
# previous block's hash.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("request_id", String(64), nullable=True, index=True),
    Column("tenant", String(128), nullable=True),
    Column("endpoint", String(64), nullable=True),
    Column("model_name", String(128), nullable=True),
    Column("model_version", String(64), nullable=True),
    Column("decision", String(128), nullable=True),
    Column("confidence", Float, nullable=True),
    Column("input_hmac", String(64), nullable=True),
    Column("actor", String(128), nullable=True),
    Column("details", JSON, nullable=True),
)
# The few events that are not predictions (release actions, prunes), found without a scan of
# the log (migration 0007).
AUDIT_ACTIONS = text("kind <> 'prediction'")  # a query's condition must say it to use the index
Index(
    "ix_audit_log_actions",
    audit_log.c.kind,
    audit_log.c.id,
    sqlite_where=AUDIT_ACTIONS,
    postgresql_where=AUDIT_ACTIONS,
)

audit_blocks = Table(
    "audit_blocks",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("first_id", BIG_ID, nullable=False),
    Column("last_id", BIG_ID, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("rows_hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("block_hash", String(64), nullable=False),
    Column("sealed_at", DateTime(timezone=True), nullable=False),
)

# One row per built release (issue 18): the Bento it made, the model versions it pins, the
# digest of its pinned configuration and the release it was built over (rollback goes there).
releases = Table(
    "releases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bento_tag", String(256), nullable=True),  # None: built without a Bento
    Column("model_tags", JSON, nullable=False),
    Column("config_digest", String(64), nullable=False),
    Column("config", JSON, nullable=False),
    Column("parent_id", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
)

# Canary rollouts (issue 18): a candidate version taking a weighted share of the traffic a
# baseline version serves on some endpoints. Workers poll the rows in force (by state).
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoints", JSON, nullable=False),
    Column("candidate_model", String(128), nullable=False),
    Column("candidate_version", String(64), nullable=False),
    Column("baseline_model", String(128), nullable=False),
    Column("baseline_version", String(64), nullable=False),
    Column("steps", JSON, nullable=False),  # percentages, ascending, the last one 100
    Column("step_index", Integer, nullable=False),
    Column("weight", Float, nullable=False),  # percent of the baseline's traffic moved
    Column("tenant", String(128), nullable=True),  # None: every tenant
    Column("region", String(32), nullable=True),  # None: every region
    Column("mode", String(8), nullable=False),  # hash (per request id) | sticky (per tenant)
    Column("state", String(16), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
)

# Mergeable per-minute rollups of `predictions` (issue 19): the monitors read these, so a
# tick's cost follows the number of keys and minutes, not of predictions. Maps are JSON lists
# of [key, count] pairs (a class may be null), added up key by key when rows merge.
ROLLUP_KEY = ("minute", "model_name", "model_version", "tenant", "endpoint", "resource_class")
prediction_rollups = Table(
    "prediction_rollups",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("minute", DateTime(timezone=True), nullable=False, index=True),  # UTC, whole minute
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("resource_class", String(8), nullable=False),  # null in predictions counts as cpu
    Column("n", Integer, nullable=False),  # rows, every status
    Column("requests", Integer, nullable=False),  # a bulk request's first row only
    Column("latency_ms", Float, nullable=False),
    Column("compute_ms", Float, nullable=False),
    Column("busy_ms", Float, nullable=False),  # busy_ms, or compute_ms where it is null
    Column("statuses", JSON, nullable=False),  # [[status, n], ...]
    Column("classes", JSON, nullable=False),  # [[predicted_class, n], ...] of ok rows
    Column("confidence_bins", JSON, nullable=False),  # [[fine bin, n], ...] of ok rows
    Column("latency_buckets", JSON, nullable=False),  # [[log2 bucket, n], ...]
    Column("first_ts", DateTime(timezone=True), nullable=False),
    Column("last_ts", DateTime(timezone=True), nullable=False),
    Column("first_ok_ts", DateTime(timezone=True), nullable=True),
    UniqueConstraint(*ROLLUP_KEY, name="uq_prediction_rollups_key"),
)

# The id of the last prediction folded into `prediction_rollups` (one row, id 1).
rollup_cursor = Table(
    "rollup_cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_id", BIG_ID, nullable=False),
)
