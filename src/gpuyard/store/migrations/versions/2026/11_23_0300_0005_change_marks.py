"""change marks: what the scheduler's snapshot cache re-reads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 03:00:00

Every change to what the scheduler sees of a server (its row's capacity, counters, status,
labels, name, cluster, port range; its GPUs) sets ``servers.change_mark``, and every change
to a workload (its row; its allocations) sets ``workloads.change_mark``. Triggers do it, in
the writer's own transaction, so no code path can forget.

- PostgreSQL: the mark is the writing transaction's id (``txid_current()``). A reader that
  remembers ``txid_snapshot_xmin`` of its snapshot finds every change it has not seen with
  ``change_mark >= xmin``, whatever order transactions commit in.
- SQLite: writers are serialised, so a counter (``change_clock``) bumped by every trigger
  orders changes by commit; a reader remembers the counter it saw and reads ``> counter``.

Careful: a later SQLite batch migration that recreates servers, server_gpus, workloads or
allocations ("move and copy") drops these triggers; it must create them again
(tests/store/test_change_marks.py fails if one is missing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Columns of servers the scheduler's snapshot reads (not missed_probes, last_seen_at...).
SERVER_COLUMNS = (
    "name, cluster_id, status, labels, host_port_min, host_port_max, cpu_milli, ram_mib, "
    "storage_mib, gpu_milli, alloc_cpu_milli, alloc_ram_mib, alloc_storage_mib, alloc_gpu_milli"
)
#: Columns of server_gpus the snapshot reads (not uuid, utilization_pct).
GPU_COLUMNS = "server_id, gpu_index, model, memory_mib, allocated_milli"
#: Columns of allocations the snapshot reads (not container_id).
ALLOCATION_COLUMNS = (
    "workload_id, replica, server_id, cpu_milli, ram_mib, storage_mib, gpu_milli, "
    "gpu_allocation, started_at"
)

_TICK = "UPDATE change_clock SET value = value + 1 WHERE id = 1;"
_NOW = "(SELECT value FROM change_clock WHERE id = 1)"


def _sqlite_mark(table: str, row: str) -> str:
    return f"{_TICK} UPDATE {table} SET change_mark = {_NOW} WHERE id = {row};"


SQLITE_TRIGGERS = {
    "trg_servers_mark_insert": (
        f"AFTER INSERT ON servers BEGIN {_sqlite_mark('servers', 'NEW.id')} END"
    ),
    "trg_servers_mark_update": (
        f"AFTER UPDATE OF {SERVER_COLUMNS} ON servers BEGIN {_sqlite_mark('servers', 'NEW.id')} END"
    ),
    "trg_server_gpus_mark_insert": (
        f"AFTER INSERT ON server_gpus BEGIN {_sqlite_mark('servers', 'NEW.server_id')} END"
    ),
    "trg_server_gpus_mark_delete": (
        f"AFTER DELETE ON server_gpus BEGIN {_sqlite_mark('servers', 'OLD.server_id')} END"
    ),
    "trg_server_gpus_mark_update": (
        f"AFTER UPDATE OF {GPU_COLUMNS} ON server_gpus BEGIN "
        f"{_TICK} UPDATE servers SET change_mark = {_NOW} "
        "WHERE id IN (OLD.server_id, NEW.server_id); END"
    ),
    "trg_workloads_mark_insert": (
        f"AFTER INSERT ON workloads BEGIN {_sqlite_mark('workloads', 'NEW.id')} END"
    ),
    # Any change to the row except the mark itself (so the trigger's own UPDATE, and the
    # allocations triggers' ones, do not fire it again).
    "trg_workloads_mark_update": (
        "AFTER UPDATE ON workloads WHEN NEW.change_mark IS OLD.change_mark "
        f"BEGIN {_sqlite_mark('workloads', 'NEW.id')} END"
    ),
    "trg_allocations_mark_insert": (
        f"AFTER INSERT ON allocations BEGIN {_sqlite_mark('workloads', 'NEW.workload_id')} END"
    ),
    "trg_allocations_mark_delete": (
        f"AFTER DELETE ON allocations BEGIN {_sqlite_mark('workloads', 'OLD.workload_id')} END"
    ),
    "trg_allocations_mark_update": (
        f"AFTER UPDATE OF {ALLOCATION_COLUMNS} ON allocations BEGIN "
        f"{_TICK} UPDATE workloads SET change_mark = {_NOW} "
        "WHERE id IN (OLD.workload_id, NEW.workload_id); END"
    ),
}

# PostgreSQL: a row's own changes set NEW.change_mark in a BEFORE trigger (no second row
# version); changes to child rows mark the parent, skipping the UPDATE when this
# transaction already marked it (a reservation updates the server row, then its GPUs).
POSTGRES_FUNCTIONS = {
    "gpuyard_mark_row": """
        BEGIN
            NEW.change_mark := txid_current();
            RETURN NEW;
        END
    """,
    "gpuyard_mark_server_of_gpu": """
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE servers SET change_mark = txid_current()
                WHERE id = OLD.server_id AND change_mark <> txid_current();
            END IF;
            IF TG_OP <> 'DELETE' THEN
                UPDATE servers SET change_mark = txid_current()
                WHERE id = NEW.server_id AND change_mark <> txid_current();
            END IF;
            RETURN NULL;
        END
    """,
    "gpuyard_mark_workload_of_allocation": """
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                UPDATE workloads SET change_mark = txid_current()
                WHERE id = OLD.workload_id AND change_mark <> txid_current();
            END IF;
            IF TG_OP <> 'DELETE' THEN
                UPDATE workloads SET change_mark = txid_current()
                WHERE id = NEW.workload_id AND change_mark <> txid_current();
            END IF;
            RETURN NULL;
        END
    """,
}
POSTGRES_TRIGGERS = {
    "trg_servers_mark": (
        f"BEFORE INSERT OR UPDATE OF {SERVER_COLUMNS} ON servers "
        "FOR EACH ROW EXECUTE FUNCTION gpuyard_mark_row()"
    ),
    "trg_server_gpus_mark": (
        f"AFTER INSERT OR DELETE OR UPDATE OF {GPU_COLUMNS} ON server_gpus "
        "FOR EACH ROW EXECUTE FUNCTION gpuyard_mark_server_of_gpu()"
    ),
    "trg_workloads_mark": (
        "BEFORE INSERT OR UPDATE ON workloads FOR EACH ROW EXECUTE FUNCTION gpuyard_mark_row()"
    ),
    "trg_allocations_mark": (
        f"AFTER INSERT OR DELETE OR UPDATE OF {ALLOCATION_COLUMNS} ON allocations "
        "FOR EACH ROW EXECUTE FUNCTION gpuyard_mark_workload_of_allocation()"
    ),
}
_TRIGGER_TABLES = {
    "trg_servers_mark": "servers",
    "trg_server_gpus_mark": "server_gpus",
    "trg_workloads_mark": "workloads",
    "trg_allocations_mark": "allocations",
}


def upgrade() -> None:
    op.create_table(
        "change_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_clock")),
    )
    op.execute("INSERT INTO change_clock (id, value) VALUES (1, 0)")
    for table in ("servers", "workloads"):
        # Plain ALTER TABLE (no batch): a SQLite table copy here would be pointless.
        op.add_column(
            table, sa.Column("change_mark", sa.BigInteger(), server_default="0", nullable=False)
        )
        op.create_index(op.f(f"ix_{table}_change_mark"), table, ["change_mark"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for name, body in POSTGRES_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}$$")
        for name, spec in POSTGRES_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {spec}")
    else:
        for name, spec in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {spec}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in _TRIGGER_TABLES.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for name in POSTGRES_FUNCTIONS:
            op.execute(f"DROP FUNCTION {name}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    for table in ("workloads", "servers"):
        op.drop_index(op.f(f"ix_{table}_change_mark"), table_name=table)
        # Native DROP COLUMN (SQLite >= 3.35): a batch table copy would drop the workloads
        # table under the allocations' ON DELETE CASCADE foreign key.
        op.execute(f"ALTER TABLE {table} DROP COLUMN change_mark")
    op.drop_table("change_clock")
