"""Rows to the scheduler's snapshot types (one named converter each)."""

from __future__ import annotations

from datetime import datetime

from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.snapshot import GpuDevice, RunningReplica, ServerView
from gpuyard.store.base import as_utc
from gpuyard.store.conversions import (
    allocation_gpus,
    allocation_resources,
    server_allocated,
    server_capacity,
)
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


def epoch(value: datetime | None) -> float | None:
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
            GpuDevice(g.gpu_index, g.model, g.memory_mib, g.allocated_milli) for g in row.gpus
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
        team_id=workload.team_id,
        name=workload.name,
    )
