"""workloads.plain_env_keys: env values are secrets outside their owner unless marked plain

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 02:32:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch (table copy) on SQLite would break the triggers of
    # migration 0005 that name this table.
    op.add_column(
        "workloads",
        sa.Column("plain_env_keys", sa.JSON(), server_default="[]", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("workloads", "plain_env_keys")
