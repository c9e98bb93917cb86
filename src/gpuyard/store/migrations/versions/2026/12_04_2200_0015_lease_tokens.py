"""Fencing tokens on leases

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 22:00:00

A lease's ``token`` grows by one each time the lease is taken after it lapsed, so a
holder that paused past its lease cannot commit the writes of its old term
(``store/leases.py``). Existing rows start at 1, as a new lease does. A plain ADD COLUMN, as
in 0014.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "leases", sa.Column("token", sa.BigInteger(), server_default="1", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("leases", "token")
