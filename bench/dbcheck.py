"""Read back from the database what the scenarios claim: progress, latencies, and an audit.

The audit recomputes every server's and every GPU's allocation from the allocation rows and
compares it with the guarded counters and the capacity, in one consistent snapshot (a
REPEATABLE READ transaction on PostgreSQL; SQLite reads are snapshots already).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from gpuyard.domain.resources import GPU_MILLI
from gpuyard.services.context import ServiceContext
from gpuyard.store.base import as_utc
from gpuyard.store.fleet_tables import ServerGpuRow, ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadEventRow, WorkloadRow


def count_status(ctx: ServiceContext, status: str, name_prefix: str = "") -> int:
    query = select(func.count()).select_from(WorkloadRow).where(WorkloadRow.status == status)
    if name_prefix:
        query = query.where(WorkloadRow.name.startswith(name_prefix))
    with ctx.db.read() as session:
        return int(session.scalar(query) or 0)


def reached_running(ctx: ServiceContext, name_prefix: str) -> int:
    """Workloads named ``name_prefix...`` that have been running at least once."""
    query = (
        select(func.count(func.distinct(WorkloadEventRow.workload_id)))
        .join(WorkloadRow, WorkloadRow.id == WorkloadEventRow.workload_id)
        .where(WorkloadEventRow.to_status == "running", WorkloadRow.name.startswith(name_prefix))
    )
    with ctx.db.read() as session:
        return int(session.scalar(query) or 0)


def submit_to_running(ctx: ServiceContext, name_prefix: str) -> list[float]:
    """Seconds from creation to the first ``running`` event, per workload that got there."""
    query = (
        select(WorkloadRow.created_at, func.min(WorkloadEventRow.at))
        .join(WorkloadEventRow, WorkloadEventRow.workload_id == WorkloadRow.id)
        .where(WorkloadEventRow.to_status == "running", WorkloadRow.name.startswith(name_prefix))
        .group_by(WorkloadRow.id, WorkloadRow.created_at)
    )
    with ctx.db.read() as session:
        rows = session.execute(query).all()
    return [(as_utc(at) - as_utc(created)).total_seconds() for created, at in rows]


def running_window(ctx: ServiceContext, name_prefix: str) -> tuple[float, float] | None:
    """Epoch seconds of the first and the last ``running`` event of those workloads."""
    query = (
        select(func.min(WorkloadEventRow.at), func.max(WorkloadEventRow.at))
        .join(WorkloadRow, WorkloadRow.id == WorkloadEventRow.workload_id)
        .where(WorkloadEventRow.to_status == "running", WorkloadRow.name.startswith(name_prefix))
    )
    with ctx.db.read() as session:
        first, last = session.execute(query).one()
    if first is None or last is None:
        return None
    return as_utc(first).timestamp(), as_utc(last).timestamp()


@dataclass
class Audit:
    """Violations found in one snapshot (all lists empty = consistent)."""

    servers_over_capacity: list[str] = field(default_factory=list)
    gpus_over_1000: list[str] = field(default_factory=list)
    counter_mismatches: list[str] = field(default_factory=list)
    partial_gangs: list[str] = field(default_factory=list)

    @property
    def oversubscriptions(self) -> int:
        return len(self.servers_over_capacity) + len(self.gpus_over_1000)


def audit(ctx: ServiceContext) -> Audit:
    """Recompute allocations from the allocation rows and compare, in one snapshot."""
    out = Audit()
    with ctx.db.read() as session:
        if not ctx.db.is_sqlite:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        servers = {s.id: s for s in session.scalars(select(ServerRow))}
        gpus = {(g.server_id, g.gpu_index): g for g in session.scalars(select(ServerGpuRow))}
        allocations = session.execute(
            select(
                AllocationRow.server_id,
                AllocationRow.cpu_milli,
                AllocationRow.ram_mib,
                AllocationRow.storage_mib,
                AllocationRow.gpu_milli,
                AllocationRow.gpu_allocation,
            )
        ).all()
        gangs = session.execute(
            select(WorkloadRow.id, WorkloadRow.replicas, func.count(AllocationRow.id))
            .join(AllocationRow, AllocationRow.workload_id == WorkloadRow.id)
            .where(WorkloadRow.gang.is_(True))
            .group_by(WorkloadRow.id, WorkloadRow.replicas)
        ).all()
    used: dict[str, list[int]] = {sid: [0, 0, 0, 0] for sid in servers}
    milli: dict[tuple[str, int], int] = dict.fromkeys(gpus, 0)
    for server_id, cpu, ram, storage, gpu, slots in allocations:
        totals = used[server_id]
        for i, amount in enumerate((cpu, ram, storage, gpu)):
            totals[i] += amount
        for index, m in slots or []:
            milli[(server_id, index)] = milli.get((server_id, index), 0) + m
    for sid, server in servers.items():
        cap = (server.cpu_milli, server.ram_mib, server.storage_mib, server.gpu_milli)
        counters = (
            server.alloc_cpu_milli,
            server.alloc_ram_mib,
            server.alloc_storage_mib,
            server.alloc_gpu_milli,
        )
        if any(u > c for u, c in zip(used[sid], cap, strict=True)):
            out.servers_over_capacity.append(server.name)
        if tuple(used[sid]) != counters:
            out.counter_mismatches.append(server.name)
    for key, total in milli.items():
        gpu_row = gpus.get(key)
        if total > GPU_MILLI:
            out.gpus_over_1000.append(f"{key[0]}/{key[1]}")
        if gpu_row is None or gpu_row.allocated_milli != total:
            out.counter_mismatches.append(f"gpu {key[0]}/{key[1]}")
    out.partial_gangs = [wid for wid, replicas, placed in gangs if placed != replicas]
    return out
