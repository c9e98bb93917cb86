"""What the live stream reads: workloads and servers changed since a watermark.

The change marks of migration 0005 (set by triggers in the writer's own transaction,
whichever process wrote) say which rows moved; ``snapshot_source.begin_snapshot`` (shared with
the scheduler's snapshot cache) says from which mark the next read must start so that no
commit is missed, whatever order PostgreSQL transactions commit in. Rows come back as
read models with the mark they were read at: a reader that sees the same row at the
same mark twice (PostgreSQL re-reads a window while older transactions are open) knows
it has not changed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.domain.fleet_records import Server
from gpuyard.domain.workload_records import Workload
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.store.fleet import server_record
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import WorkloadRow
from gpuyard.store.workloads import workload_record


def workloads_changed_since(session: Session, since: int) -> list[tuple[Workload, int]]:
    """Workloads whose row or allocations changed at or after mark ``since``, each with
    its mark, in mark order."""
    query = (
        select(WorkloadRow)
        .where(WorkloadRow.change_mark >= since)
        .order_by(WorkloadRow.change_mark, WorkloadRow.id)
    )
    return [(workload_record(row), row.change_mark) for row in session.scalars(query)]


def servers_changed_since(session: Session, since: int) -> list[tuple[Server, int]]:
    """Servers whose row or GPUs changed at or after mark ``since``, each with its mark,
    in mark order."""
    query = (
        select(ServerRow)
        .where(ServerRow.change_mark >= since)
        .order_by(ServerRow.change_mark, ServerRow.id)
    )
    return [(server_record(row), row.change_mark) for row in session.scalars(query)]


def pending_workload_ids(session: Session) -> set[str]:
    """Ids of the workloads waiting in the queue."""
    query = select(WorkloadRow.id).where(WorkloadRow.status == WorkloadStatus.PENDING.value)
    return set(session.scalars(query))
