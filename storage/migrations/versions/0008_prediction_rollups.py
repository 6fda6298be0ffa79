"""prediction_rollups: per-minute mergeable aggregates of predictions, and their fold cursor

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_KEY = ["minute", "model_name", "model_version", "tenant", "endpoint", "resource_class"]


def upgrade() -> None:
    op.create_table(
        "prediction_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("resource_class", sa.String(8), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("compute_ms", sa.Float(), nullable=False),
        sa.Column("busy_ms", sa.Float(), nullable=False),
        sa.Column("statuses", sa.JSON(), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("confidence_bins", sa.JSON(), nullable=False),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.Column("first_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_ok_ts", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_rollups"),
        sa.UniqueConstraint(*_KEY, name="uq_prediction_rollups_key"),
    )
    op.create_index("ix_prediction_rollups_minute", "prediction_rollups", ["minute"])
    cursor = op.create_table(
        "rollup_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollup_cursor"),
    )
    # Existing predictions are folded by the first fold (the cursor starts before them all).
    op.bulk_insert(cursor, [{"id": 1, "last_id": 0}])


def downgrade() -> None:
    op.drop_table("rollup_cursor")
    op.drop_index("ix_prediction_rollups_minute", table_name="prediction_rollups")
    op.drop_table("prediction_rollups")
