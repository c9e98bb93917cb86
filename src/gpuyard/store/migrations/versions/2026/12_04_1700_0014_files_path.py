"""files_path on workloads and pools: where a files directory is mounted in containers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:00:00

Existing workloads keep the mount they had (``/workspace``, the server default), so
recovery recreates their containers as they were; existing pools keep making warm
containers mounted there. Two tables in one migration: a pool's files_path only means
something beside its warm containers' (a launch claims one when the two agree). The
policy on the path is ``domain/files_paths.py``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch (table copy) on SQLite would break the triggers of
    # migration 0005 that name workloads, and cascade-delete what references the table.
    for table in ("workloads", "pools"):
        op.add_column(
            table,
            sa.Column("files_path", sa.String(1024), server_default="/workspace", nullable=False),
        )


def downgrade() -> None:
    for table in ("pools", "workloads"):
        op.drop_column(table, "files_path")
