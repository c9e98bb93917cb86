"""time-based fair share: each team's decayed past allocation; per-GPU-model guarantees

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 12:00:00

- ``team_usage_decay``: one row per team (deleted with it), its own workloads' allocation
  integrated over time with an exponential decay (``scheduler/usage_decay.py``), in
  internal units times seconds, as of ``accrued_at`` (epoch seconds); ``version`` makes
  each accrual a compare-and-set. Written by the history loop only while
  ``GPUYARD_FAIRSHARE_HALF_LIFE_S`` is set; empty otherwise.
- ``teams.guarantee_gpu_models``: {model: milli-GPUs}, the part of a team's GPU
  guarantee reclaimed for its work pinned to that model (``{}``: none). A plain ADD
  COLUMN with a default; the bounds are the service's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team_usage_decay",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("cpu_milli_s", sa.Double(), nullable=False),
        sa.Column("ram_mib_s", sa.Double(), nullable=False),
        sa.Column("storage_mib_s", sa.Double(), nullable=False),
        sa.Column("gpu_milli_s", sa.Double(), nullable=False),
        sa.Column("accrued_at", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_usage_decay_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_team_usage_decay")),
    )
    op.add_column(
        "teams",
        sa.Column("guarantee_gpu_models", sa.JSON(), nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("guarantee_gpu_models")
    op.drop_table("team_usage_decay")
