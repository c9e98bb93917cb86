"""GPU memory per device: what a share reserves, what each device has given out

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 05:00:00

Issue 21's ``gpu_memory_gb``: a share of one GPU may reserve memory on its device.

- ``server_gpus.allocated_memory_mib``: the device's counter, moved by the same
  compare-and-set UPDATEs as ``allocated_milli`` (``store/reservations.py``) and kept
  between 0 and the device's ``memory_mib`` by a CHECK.
- ``workloads.gpu_memory_mib``: what each replica asks for (0: none).
- ``allocations.gpu_memory_mib``: what the replica's reservation took on each of its
  devices, so a release gives back exactly that.

Plain ADD COLUMNs (a batch copy would drop the change-mark triggers of 0005). On SQLite
the CHECK is a column constraint of the new column (SQLite cannot add a table CHECK
without a copy), so DROP COLUMN still works on the way down. The counter is always
written together with ``allocated_milli``, which the change-mark triggers already watch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "allocated_memory_mib BETWEEN 0 AND memory_mib"
_CHECK_NAME = "ck_server_gpus_memory_within_device"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.add_column(
            "server_gpus",
            sa.Column("allocated_memory_mib", sa.Integer(), nullable=False, server_default="0"),
        )
        op.create_check_constraint(_CHECK_NAME, "server_gpus", _CHECK)
    else:
        op.execute(
            "ALTER TABLE server_gpus ADD COLUMN allocated_memory_mib INTEGER NOT NULL "
            f"DEFAULT '0' CONSTRAINT {_CHECK_NAME} CHECK ({_CHECK})"
        )
    for table in ("workloads", "allocations"):
        op.add_column(
            table, sa.Column("gpu_memory_mib", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    for table in ("allocations", "workloads"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN gpu_memory_mib")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_CHECK_NAME, "server_gpus", type_="check")
    op.execute("ALTER TABLE server_gpus DROP COLUMN allocated_memory_mib")
