"""audit log: a partial index on the events that are not predictions (release actions, prunes)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A prune finds the previous prune, and `audit verify` every prune, among a few rows of a log
# that holds one row per prediction ever answered: the index leaves the predictions out.
_ACTIONS = sa.text("kind <> 'prediction'")


def upgrade() -> None:
    op.create_index(
        "ix_audit_log_actions",
        "audit_log",
        ["kind", "id"],
        sqlite_where=_ACTIONS,
        postgresql_where=_ACTIONS,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_actions", table_name="audit_log")
