"""users.credentials_changed_at: a password change or reset ends earlier sessions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch (table copy) on SQLite would break the triggers of
    # migration 0005 that name this table.
    op.add_column(
        "users",
        sa.Column("credentials_changed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("users", "credentials_changed_at")
