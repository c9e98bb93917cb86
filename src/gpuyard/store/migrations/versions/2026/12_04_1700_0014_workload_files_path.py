"""workloads.files_path: where a workload's files directory is mounted in its containers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:00:00

Existing workloads keep the mount they had (``/workspace``, the server default), so
recovery recreates their containers as they were. The policy on the path is
``domain/files_paths.py``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch (table copy) on SQLite would break the triggers of
    # migration 0005 that name this table.
    op.add_column(
        "workloads",
        sa.Column(
            "files_path", sa.String(1024), server_default="/workspace", nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("workloads", "files_path")
