"""Loading the scheduler's snapshot with plain column selects.

A cycle reads every server, GPU, reservation and active workload; building ORM objects for
tens of thousands of rows would dominate the cycle, so this reads tuples and builds the
scheduler's frozen types directly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuDevice,
    PendingWorkload,
    RunningReplica,
    ServerView,
    TeamQuota,
)
from gpuyard.services.snapshots import epoch
from gpuyard.store.fleet_tables import ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.identity_tables import TeamRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

_SCHEDULABLE = [s.value for s in HOLDS_RESOURCES] + [WorkloadStatus.PENDING.value]


@dataclass(frozen=True)
class WorkloadSeen:
    """What a cycle saw of one workload, for the compare-and-set apply."""

    version: int
    status: WorkloadStatus
    reason: str | None
    name: str
    priority: int
    request: Resources  # per replica
    missing_replicas: tuple[int, ...]


@dataclass(frozen=True)
class QueueState:
    """What a cycle decided over: the snapshot, the queue and the rows it saw."""

    snapshot: ClusterSnapshot
    pending: list[PendingWorkload]
    seen: dict[str, WorkloadSeen]
    #: Docker servers (id -> their own host port range or None): their admissions stop at
    #: ``scheduled`` and take host ports; every other server starts replicas at once.
    docker_servers: dict[str, tuple[int, int] | None] = field(default_factory=dict)


def load_queue_state(session: Session) -> QueueState:
    """Read servers, reservations, pending work and quotas in one transaction."""
    gpus: dict[str, list[GpuDevice]] = defaultdict(list)
    g = ServerGpuRow
    for server_id, index, model, memory, allocated in session.execute(
        select(g.server_id, g.gpu_index, g.model, g.memory_mib, g.allocated_milli).order_by(
            g.server_id, g.gpu_index
        )
    ):
        gpus[server_id].append(GpuDevice(index, model, memory, allocated))
    s = ServerRow
    servers = tuple(
        ServerView(
            id=row.id,
            name=row.name,
            cluster_id=row.cluster_id,
            status=ServerStatus(row.status),
            capacity=Resources(row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli),
            allocated=Resources(
                row.alloc_cpu_milli, row.alloc_ram_mib, row.alloc_storage_mib, row.alloc_gpu_milli
            ),
            gpus=tuple(gpus.get(row.id, ())),
            labels=dict(row.labels or {}),
        )
        for row in session.execute(
            select(
                s.id,
                s.name,
                s.cluster_id,
                s.status,
                s.labels,
                s.cpu_milli,
                s.ram_mib,
                s.storage_mib,
                s.gpu_milli,
                s.alloc_cpu_milli,
                s.alloc_ram_mib,
                s.alloc_storage_mib,
                s.alloc_gpu_milli,
            )
        )
    )
    w = WorkloadRow
    workloads = session.execute(
        select(
            w.id,
            w.name,
            w.status,
            w.reason,
            w.version,
            w.priority,
            w.preemptible,
            w.team_id,
            w.cluster_id,
            w.gpu_model,
            w.node_selector,
            w.replicas,
            w.gang,
            w.cpu_milli,
            w.ram_mib,
            w.storage_mib,
            w.gpu_milli,
            w.created_at,
            w.pending_since,
        ).where(w.status.in_(_SCHEDULABLE))
    ).all()
    a = AllocationRow
    placed: dict[str, set[int]] = defaultdict(set)
    running: list[RunningReplica] = []
    used_by_team: dict[str, Resources] = defaultdict(Resources)
    by_id = {row.id: row for row in workloads}
    for alloc in session.execute(
        select(
            a.workload_id,
            a.replica,
            a.server_id,
            a.cpu_milli,
            a.ram_mib,
            a.storage_mib,
            a.gpu_milli,
            a.gpu_allocation,
            a.started_at,
        )
        .join(w, w.id == a.workload_id)
        .where(w.status.in_(_SCHEDULABLE))
    ):
        owner = by_id[alloc.workload_id]
        resources = Resources(alloc.cpu_milli, alloc.ram_mib, alloc.storage_mib, alloc.gpu_milli)
        placed[alloc.workload_id].add(alloc.replica)
        running.append(
            RunningReplica(
                workload_id=alloc.workload_id,
                replica=alloc.replica,
                server_id=alloc.server_id,
                priority=owner.priority,
                preemptible=owner.preemptible,
                resources=resources,
                gpu_allocation=tuple((int(i), int(m)) for i, m in alloc.gpu_allocation),
                started_at=epoch(alloc.started_at),
                team_id=owner.team_id,
                name=owner.name,
            )
        )
        if owner.team_id:
            used_by_team[owner.team_id] = used_by_team[owner.team_id] + resources
    pending: list[PendingWorkload] = []
    seen: dict[str, WorkloadSeen] = {}
    for row in workloads:
        missing = tuple(r for r in range(row.replicas) if r not in placed[row.id])
        status = WorkloadStatus(row.status)
        request = Resources(row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli)
        seen[row.id] = WorkloadSeen(
            row.version, status, row.reason, row.name, row.priority, request, missing
        )
        # A gang that holds resources is complete; a non-gang one may still miss replicas.
        if not missing or (row.gang and status is not WorkloadStatus.PENDING):
            continue
        request_fields = {
            "workload_id": row.id,
            "priority": row.priority,
            "submitted_at": epoch(row.created_at) or 0.0,
            "pending_since": epoch(row.pending_since),
            "resources": request,
            "name": row.name,
            "gpu_model": row.gpu_model,
            "cluster_id": row.cluster_id,
            "node_selector": dict(row.node_selector or {}),
            "team_id": row.team_id,
            "gang": row.gang,
            "preemptible": row.preemptible,
        }
        # The engine numbers replicas first..first+n-1: one entry per contiguous gap.
        for first, count in _contiguous_runs(missing):
            pending.append(
                PendingWorkload(
                    **request_fields, replicas_missing=count, first_missing_replica=first
                )
            )
    return QueueState(
        snapshot=ClusterSnapshot(
            servers=servers, running=tuple(running), quotas=_quotas(session, used_by_team)
        ),
        pending=pending,
        seen=seen,
        docker_servers=_docker_servers(session),
    )


def _docker_servers(session: Session) -> dict[str, tuple[int, int] | None]:
    s = ServerRow
    rows = session.execute(
        select(s.id, s.host_port_min, s.host_port_max)
        .join(ClusterRow, ClusterRow.id == s.cluster_id)
        .where(ClusterRow.kind == "docker")
    )
    return {
        server_id: (low, high) if low is not None and high is not None else None
        for server_id, low, high in rows
    }


def _quotas(session: Session, used: dict[str, Resources]) -> dict[str, TeamQuota]:
    t = TeamRow
    rows = session.execute(
        select(t.id, t.quota_cpu_milli, t.quota_ram_mib, t.quota_gpu_milli).where(
            t.quota_cpu_milli.is_not(None)
            | t.quota_ram_mib.is_not(None)
            | t.quota_gpu_milli.is_not(None)
        )
    )
    return {
        team_id: TeamQuota(
            team_id=team_id,
            used=used.get(team_id, Resources()),
            cpu_milli=cpu,
            ram_mib=ram,
            gpu_milli=gpu,
        )
        for team_id, cpu, ram, gpu in rows
    }


def _contiguous_runs(replicas: tuple[int, ...]) -> list[tuple[int, int]]:
    """(first, count) for each run of consecutive numbers in a sorted tuple."""
    runs: list[tuple[int, int]] = []
    for replica in replicas:
        if runs and runs[-1][0] + runs[-1][1] == replica:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((replica, 1))
    return runs
