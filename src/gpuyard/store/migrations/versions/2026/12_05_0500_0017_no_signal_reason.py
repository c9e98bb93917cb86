"""the culling loop's memory keeps why a workload has no utilisation signal

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 05:00:00

- ``workload_culling.no_signal_reason``: why the runtime gives no utilisation signal for
  a workload (a kubernetes cluster without metrics-server, a GPU pod), as the culling
  loop's note said; shown by ``GET /workloads/{id}/culling`` (issue 17). NULL: no reason
  given, or a signal. A plain ADD COLUMN on a table without triggers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "workload_culling",
        sa.Column("no_signal_reason", sa.String(length=300), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("workload_culling") as batch:
        batch.drop_column("no_signal_reason")
