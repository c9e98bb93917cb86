"""warm pools: pool specs, pool columns on workloads, priority 0 for warm containers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 13:00:00

- ``pools``: one spec per image type and server or cluster (issue 16).
- ``workloads.pool_id / pool_index / pool_state / from_pool``: a warm container is a
  workload row; ``from_pool`` says a user's launch took one.
- ``workloads.priority`` may be 0 (warm containers sit below every user priority), and
  ``pool_state`` is checked. SQLite cannot alter a CHECK in place and a batch table copy
  would drop the change-mark triggers of 0005 and cascade-delete the allocations; both
  changes only widen what the table accepts (no row can violate them), so the stored
  CREATE TABLE text is edited as SQLite documents for that case (writable_schema, then a
  schema_version bump so every connection re-reads it).
- The pools' built-in owner (a user that cannot log in) is made by the pool loop on
  first use (``store.pools.ensure_pool_owner``); a downgrade removes it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POOL_OWNER_ID = "00000000000000000000000000p00100"
_OLD_PRIORITY = "priority BETWEEN 1 AND 5"
_NEW_PRIORITY = "priority BETWEEN 0 AND 5"
_POOL_STATE = "pool_state IS NULL OR pool_state IN ('available', 'assigned')"
_SQLITE_ADDED = (
    f"{_NEW_PRIORITY}), CONSTRAINT ck_workloads_pool_state CHECK ({_POOL_STATE}), "
    "CONSTRAINT fk_workloads_pool_id_pools FOREIGN KEY(pool_id) REFERENCES pools (id) "
    "ON DELETE SET NULL"
)


def upgrade() -> None:
    op.create_table(
        "pools",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("image_type", sa.String(length=32), nullable=False),
        sa.Column("image", sa.String(length=512), nullable=False),
        sa.Column("server_id", sa.String(length=32), nullable=True),
        sa.Column("cluster_id", sa.String(length=32), nullable=True),
        sa.Column("target_size", sa.Integer(), nullable=False),
        sa.Column("port_min", sa.Integer(), nullable=False),
        sa.Column("port_max", sa.Integer(), nullable=False),
        sa.Column("container_port", sa.Integer(), nullable=True),
        sa.Column("cpu_milli", sa.Integer(), nullable=False),
        sa.Column("ram_mib", sa.Integer(), nullable=False),
        sa.Column("storage_mib", sa.Integer(), nullable=False),
        sa.Column("gpu_milli", sa.Integer(), nullable=False),
        sa.Column("command", sa.JSON(), nullable=True),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(server_id IS NULL) <> (cluster_id IS NULL)",
            name=op.f("ck_pools_server_or_cluster"),
        ),
        sa.CheckConstraint(
            "target_size BETWEEN 0 AND 256", name=op.f("ck_pools_target_size_range")
        ),
        sa.CheckConstraint(
            "port_min BETWEEN 1 AND 65535 AND port_max BETWEEN port_min AND 65535",
            name=op.f("ck_pools_port_range"),
        ),
        sa.CheckConstraint(
            "container_port IS NULL OR container_port BETWEEN 1 AND 65535",
            name=op.f("ck_pools_container_port_range"),
        ),
        sa.CheckConstraint(
            "cpu_milli >= 0 AND ram_mib >= 0 AND storage_mib >= 0 AND gpu_milli >= 0",
            name=op.f("ck_pools_request_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["clusters.id"],
            name=op.f("fk_pools_cluster_id_clusters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_pools_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pools")),
        sa.UniqueConstraint("name", name=op.f("uq_pools_name")),
    )
    op.create_index(op.f("ix_pools_image_type"), "pools", ["image_type"], unique=False)
    op.create_index(op.f("ix_pools_server_id"), "pools", ["server_id"], unique=False)
    op.create_index(op.f("ix_pools_cluster_id"), "pools", ["cluster_id"], unique=False)

    postgres = op.get_bind().dialect.name == "postgresql"
    # Plain ADD COLUMN (no batch copy: see the docstring).
    if postgres:
        op.add_column(
            "workloads",
            sa.Column(
                "pool_id",
                sa.String(length=32),
                sa.ForeignKey(
                    "pools.id", name=op.f("fk_workloads_pool_id_pools"), ondelete="SET NULL"
                ),
                nullable=True,
            ),
        )
    else:  # its foreign key joins the CREATE TABLE text below
        op.add_column("workloads", sa.Column("pool_id", sa.String(length=32), nullable=True))
    op.add_column("workloads", sa.Column("pool_index", sa.Integer(), nullable=True))
    op.add_column("workloads", sa.Column("pool_state", sa.String(length=16), nullable=True))
    op.add_column(
        "workloads",
        sa.Column("from_pool", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(op.f("ix_workloads_pool_id"), "workloads", ["pool_id"], unique=False)
    if postgres:
        op.drop_constraint(op.f("ck_workloads_priority_range"), "workloads", type_="check")
        op.create_check_constraint("priority_range", "workloads", _NEW_PRIORITY)
        op.create_check_constraint("pool_state", "workloads", _POOL_STATE)
    else:
        _rewrite_sqlite_checks(_OLD_PRIORITY + ")", _SQLITE_ADDED)


def _rewrite_sqlite_checks(old: str, new: str) -> None:
    """Edit the workloads table's CREATE TABLE text (SQLite's documented procedure for
    changing CHECK constraints, for changes no stored row can violate)."""
    bind = op.get_bind()
    table_sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'workloads'"
    ).scalar_one()
    if old not in table_sql:
        # replace() would change nothing and the migration would pass with the old CHECK:
        # the table's text is not what this migration was written against.
        raise RuntimeError(f"workloads table text lacks {old!r}: its CHECKs were not rewritten")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) "
        "WHERE type = 'table' AND name = 'workloads'",
        (old, new),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # The warm containers first (priority 0 is theirs alone), then their owner: the
    # workloads' foreign key to users refuses the other order.
    op.execute(
        sa.text("DELETE FROM workloads WHERE priority = 0 OR owner_id = :id").bindparams(
            id=POOL_OWNER_ID
        )
    )
    op.execute(sa.text("DELETE FROM users WHERE id = :id").bindparams(id=POOL_OWNER_ID))
    if postgres:
        op.drop_constraint(op.f("ck_workloads_pool_state"), "workloads", type_="check")
        op.drop_constraint(op.f("ck_workloads_priority_range"), "workloads", type_="check")
        op.create_check_constraint("priority_range", "workloads", _OLD_PRIORITY)
    else:
        _rewrite_sqlite_checks(_SQLITE_ADDED, _OLD_PRIORITY + ")")
    op.drop_index(op.f("ix_workloads_pool_id"), table_name="workloads")
    if postgres:
        op.drop_constraint(op.f("fk_workloads_pool_id_pools"), "workloads", type_="foreignkey")
    # Native DROP COLUMN (SQLite >= 3.35), as 0005 does (the constraints naming them are
    # gone from the table's text above).
    for column in ("from_pool", "pool_state", "pool_index", "pool_id"):
        op.execute(f"ALTER TABLE workloads DROP COLUMN {column}")
    op.drop_index(op.f("ix_pools_cluster_id"), table_name="pools")
    op.drop_index(op.f("ix_pools_server_id"), table_name="pools")
    op.drop_index(op.f("ix_pools_image_type"), table_name="pools")
    op.drop_table("pools")
