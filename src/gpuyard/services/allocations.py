"""Giving back a workload's reservations."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gpuyard.store.conversions import allocation_gpus, allocation_resources
from gpuyard.store.reservations import release_resources
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


def release_allocation(session: Session, workload: WorkloadRow, allocation: AllocationRow) -> None:
    """Release one replica's reservation and forget it."""
    release_resources(
        session, allocation.server_id, allocation_resources(allocation), allocation_gpus(allocation)
    )
    workload.allocations.remove(allocation)  # delete-orphan removes the row at flush


def release_workload(session: Session, workload: WorkloadRow) -> set[str]:
    """Release every reservation of ``workload``; return the servers that got room back."""
    servers = {a.server_id for a in workload.allocations}
    for allocation in list(workload.allocations):
        release_allocation(session, workload, allocation)
    return servers
