"""hierarchical quotas: a team's parent, guarantees per resource and over-quota weight

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 06:00:00

- ``teams.parent_id``: the department a team belongs to (two levels at most, checked by
  the service with ``scheduler/fairshare.py``); a deleted department leaves its teams at
  the top level (SET NULL).
- ``teams.guarantee_*``: the deserved quota per resource, lent while idle and reclaimed
  by preemption (issue 21); 0 = none. The existing ``quota_*`` columns stay the limits.
- ``teams.quota_weight``: the share of idle capacity a team borrows, relative to its
  siblings (1 to 1000).
The bounds are checked by the service.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GUARANTEES = ("guarantee_cpu_milli", "guarantee_ram_mib", "guarantee_storage_mib", "guarantee_gpu_milli")


def upgrade() -> None:
    # Batch mode: SQLite cannot add a named foreign key with ALTER TABLE; teams has no
    # triggers a table copy would drop.
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        for name in _GUARANTEES:
            batch_op.add_column(
                sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            )
        batch_op.add_column(
            sa.Column("quota_weight", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.create_foreign_key(
            "fk_teams_parent_id_teams", "teams", ["parent_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_teams_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_index("ix_teams_parent_id")
        batch_op.drop_constraint("fk_teams_parent_id_teams", type_="foreignkey")
        batch_op.drop_column("quota_weight")
        for name in reversed(_GUARANTEES):
            batch_op.drop_column(name)
        batch_op.drop_column("parent_id")
