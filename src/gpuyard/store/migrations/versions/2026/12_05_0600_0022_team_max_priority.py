"""priority policy: a team's highest workload priority

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 06:00:00

- ``teams.max_priority``: the highest priority the team's work may ask for (NULL: only
  the submitter's role caps it; ``domain/priority.py``). A plain ADD COLUMN with its check
  (no batch copy, which SQLite would need for a constraint on an existing table: the
  bounds are also the API's, and the service is the only writer).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("teams", sa.Column("max_priority", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("max_priority")
