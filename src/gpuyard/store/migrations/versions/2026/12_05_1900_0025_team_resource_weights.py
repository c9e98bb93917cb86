"""over-quota weights per resource and per GPU model of a team

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 19:00:00

- ``teams.quota_weights``: {resource: weight} for the resources (cpu, ram_gb,
  storage_gb, gpu) whose over-quota weight differs from ``quota_weight`` (``{}``: none).
- ``teams.weight_gpu_models``: {model: weight}, the team's claim on that model's idle
  GPUs (``{}``: its GPU weight for every model).
Plain ADD COLUMNs with defaults; the bounds are the service's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "teams", sa.Column("quota_weights", sa.JSON(), nullable=False, server_default="{}")
    )
    op.add_column(
        "teams", sa.Column("weight_gpu_models", sa.JSON(), nullable=False, server_default="{}")
    )


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("weight_gpu_models")
        batch.drop_column("quota_weights")
