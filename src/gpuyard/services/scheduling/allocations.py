"""Giving back a workload's reservations."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gpuyard.store.conversions import allocation_gpus, allocation_resources
from gpuyard.store.reservations import release_resources
from gpuyard.store.runtime_tables import ContainerTeardownRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


def release_allocation(
    session: Session,
    workload: WorkloadRow,
    allocation: AllocationRow,
    *,
    reason: str = "released",
    grace_s: float | None = None,
) -> None:
    """Release one replica's reservation and forget it. Its host ports go with the row
    (ON DELETE CASCADE); its container, if it has one, is recorded for the cleanup loop
    to stop (``grace_s``, None: the configured grace period) and remove, in this same
    transaction, so no container outlives its reservation unnoticed."""
    release_resources(
        session, allocation.server_id, allocation_resources(allocation), allocation_gpus(allocation)
    )
    if allocation.container_id is None:
        # The starter may be recording a container on this row right now (PostgreSQL runs
        # both at once): read it again under a row lock, so a container recorded by a
        # transaction that committed after ours began is not forgotten. SQLite's writers
        # are serialised already and the lock clause is left out there.
        session.refresh(allocation, ["container_id"], with_for_update=True)
    if allocation.container_id:  # simulated replicas have none: nothing more to write
        record_teardown(
            session, allocation.container_id, allocation.server_id, workload.id, reason, grace_s
        )
    workload.allocations.remove(allocation)  # delete-orphan removes the row at flush


def record_teardown(
    session: Session,
    handle: str,
    server_id: str,
    workload_id: str,
    reason: str,
    grace_s: float | None = None,
) -> None:
    """Ask the cleanup loop to stop and remove the container behind ``handle``."""
    session.add(
        ContainerTeardownRow(
            handle=handle,
            server_id=server_id,
            workload_id=workload_id,
            reason=reason[:64],
            grace_s=grace_s,
        )
    )


def release_workload(
    session: Session, workload: WorkloadRow, *, reason: str = "released"
) -> set[str]:
    """Release every reservation of ``workload``; return the servers that got room back."""
    servers = {a.server_id for a in workload.allocations}
    for allocation in list(workload.allocations):
        release_allocation(session, workload, allocation, reason=reason)
    return servers
