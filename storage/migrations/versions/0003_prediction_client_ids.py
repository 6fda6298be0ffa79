"""predictions: the client's own request id beside ours, and the input's HMAC digest

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_request_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("input_hmac", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_predictions_client_request_id"), ["client_request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_client_request_id"))
        batch_op.drop_column("input_hmac")
        batch_op.drop_column("client_request_id")
