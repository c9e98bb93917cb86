"""Rows the snapshot cache reads, as the scheduler's frozen types.

Pure conversions (no database access) of the columns ``store/snapshot_source.py``
selects: a server row and its GPUs become a
:class:`~gpuyard.scheduler.snapshot.ServerView`; a workload row and its allocations become
its running replicas, its queue entries and what the apply needs to know it saw. The
ORM-row forms (``server_to_view``, ``allocation_to_replica``) serve the resize, which
holds loaded rows rather than the snapshot's columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuDevice,
    PendingWorkload,
    RunningReplica,
    ServerView,
    quota_holder,
)
from gpuyard.store.base import as_utc
from gpuyard.store.conversions import (
    allocation_gpus,
    allocation_resources,
    server_allocated,
    server_capacity,
)
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


@dataclass(frozen=True)
class WorkloadSeen:
    """What a cycle saw of one workload, for the compare-and-set apply."""

    version: int
    status: WorkloadStatus
    reason: str | None
    name: str
    priority: int
    request: Resources  # per replica


@dataclass(frozen=True)
class QueueState:
    """What a cycle decided over: the snapshot, the queue and the rows it saw."""

    snapshot: ClusterSnapshot
    pending: list[PendingWorkload]
    seen: dict[str, WorkloadSeen]
    #: Docker servers (id -> their own host port range or None): their admissions stop at
    #: ``scheduled`` and take host ports; every other server starts replicas at once.
    docker_servers: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    #: Workloads left out because their rows could not be read or converted.
    set_aside: dict[str, SetAside] = field(default_factory=dict)


@dataclass(frozen=True)
class SetAside:
    """A workload the snapshot leaves out: its row (or an allocation of it) could not be
    read, or not turned into the scheduler's types. The scheduling service fails it."""

    status: str | None  # None: not even its status could be read
    error: Exception


class CachedWorkload(NamedTuple):  # a tuple: made for every workload on a full load
    """One schedulable workload as the snapshot needs it, built from its row and its
    allocations."""

    seen: WorkloadSeen
    #: Its quota holder (``scheduler.snapshot.quota_holder``): its team, else its owner.
    team_id: str | None
    running: tuple[RunningReplica, ...]
    #: Entries for the queue: its missing replicas, one per contiguous run.
    pending: tuple[PendingWorkload, ...]
    #: What its replicas hold in all (for its team's quota).
    usage: Resources


def server_view(row: Any, gpus: Iterable[GpuDevice], whole_gpus_only: bool = False) -> ServerView:
    """A server row (``SERVER_COLUMNS`` of the snapshot source) and its GPUs, in index
    order; ``whole_gpus_only``: its cluster's runtime gives no GPU shares."""
    return ServerView(
        id=row.id,
        name=row.name,
        cluster_id=row.cluster_id,
        status=ServerStatus(row.status),
        capacity=Resources(row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli),
        allocated=Resources(
            row.alloc_cpu_milli, row.alloc_ram_mib, row.alloc_storage_mib, row.alloc_gpu_milli
        ),
        gpus=tuple(gpus),
        labels=text_map(row.labels),
        whole_gpus_only=whole_gpus_only,
    )


def text_map(value: Any) -> dict[str, str]:
    """Labels or a node selector as stored (a JSON object of text); ValueError for any
    other shape, which the engine could not compare or hash."""
    if not value:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("expected a JSON object of text values")
    return dict(value)


def cached_workload(row: Any, allocations: Sequence[Any]) -> CachedWorkload:
    """A workload row and its allocations as the snapshot's replicas and queue entries."""
    request = Resources(
        row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli, row.gpu_memory_mib
    )
    # The scheduler's "team" is the quota holder: the team, else the owner (in no team).
    holder = quota_holder(row.team_id, row.owner_id)
    running = tuple(
        RunningReplica(
            workload_id=row.id,
            replica=alloc.replica,
            server_id=alloc.server_id,
            priority=row.priority,
            preemptible=row.preemptible,
            resources=Resources(
                alloc.cpu_milli,
                alloc.ram_mib,
                alloc.storage_mib,
                alloc.gpu_milli,
                alloc.gpu_memory_mib,
            ),
            gpu_allocation=tuple((int(i), int(m)) for i, m in alloc.gpu_allocation),
            started_at=epoch(alloc.started_at),
            team_id=holder,
            name=row.name,
            gpu_model=row.gpu_model if row.gpu_milli else None,
        )
        for alloc in allocations
    )
    placed = {r.replica for r in running}
    missing = tuple(r for r in range(row.replicas) if r not in placed)
    status = WorkloadStatus(row.status)
    seen = WorkloadSeen(row.version, status, row.reason, row.name, row.priority, request)
    pending: tuple[PendingWorkload, ...] = ()
    # A gang that holds resources is complete; a non-gang one may still miss replicas.
    if missing and not (row.gang and status is not WorkloadStatus.PENDING):
        request_fields = {
            "workload_id": row.id,
            "priority": row.priority,
            "submitted_at": epoch(row.created_at) or 0.0,
            "pending_since": epoch(row.pending_since),
            "resources": request,
            "name": row.name,
            "gpu_model": row.gpu_model,
            "cluster_id": row.cluster_id,
            "node_selector": text_map(row.node_selector),
            "team_id": holder,
            "gang": row.gang,
            "preemptible": row.preemptible,
        }
        # The engine numbers replicas first..first+n-1: one entry per contiguous gap.
        pending = tuple(
            PendingWorkload(**request_fields, replicas_missing=count, first_missing_replica=first)
            for first, count in contiguous_runs(missing)
        )
    usage = Resources()
    for replica in running:
        usage = usage + replica.resources
    return CachedWorkload(seen, holder, running, pending, usage)


def contiguous_runs(replicas: tuple[int, ...]) -> list[tuple[int, int]]:
    """(first, count) for each run of consecutive numbers in a sorted tuple."""
    runs: list[tuple[int, int]] = []
    for replica in replicas:
        if runs and runs[-1][0] + runs[-1][1] == replica:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((replica, 1))
    return runs


def epoch(value: datetime | None) -> float | None:
    """Seconds since the epoch of a stored time (stored times may be naive UTC)."""
    return None if value is None else as_utc(value).timestamp()


def server_to_view(row: ServerRow) -> ServerView:
    return ServerView(
        id=row.id,
        name=row.name,
        cluster_id=row.cluster_id,
        status=ServerStatus(row.status),
        capacity=server_capacity(row),
        allocated=server_allocated(row),
        gpus=tuple(
            GpuDevice(g.gpu_index, g.model, g.memory_mib, g.allocated_milli, g.allocated_memory_mib)
            for g in row.gpus
        ),
        labels=dict(row.labels or {}),
    )


def allocation_to_replica(workload: WorkloadRow, allocation: AllocationRow) -> RunningReplica:
    return RunningReplica(
        workload_id=workload.id,
        replica=allocation.replica,
        server_id=allocation.server_id,
        priority=workload.priority,
        preemptible=workload.preemptible,
        resources=allocation_resources(allocation),
        gpu_allocation=allocation_gpus(allocation),
        started_at=epoch(allocation.started_at),
        team_id=quota_holder(workload.team_id, workload.owner_id),
        name=workload.name,
        gpu_model=workload.gpu_model if workload.gpu_milli else None,
    )
