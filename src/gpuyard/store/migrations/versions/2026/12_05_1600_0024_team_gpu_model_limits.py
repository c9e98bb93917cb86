"""per-GPU-model limits of a team (a department: with its teams)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 16:00:00

- ``teams.limit_gpu_models``: {model: milli-GPUs}, at most this much of each model held
  at once by the team's work (a department's: its own and its teams' together; ``{}``:
  none). A plain ADD COLUMN with a default; the bounds are the service's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "teams",
        sa.Column("limit_gpu_models", sa.JSON(), nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("limit_gpu_models")
