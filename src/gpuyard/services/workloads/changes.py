"""Changing workloads: resize / re-prioritise (PATCH), stop and delete."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import Conflict, InvalidInput
from gpuyard.domain.resources import Resources
from gpuyard.domain.workload_state import HOLDS_RESOURCES, TERMINAL, WorkloadStatus
from gpuyard.runtimes.registry import runs_containers
from gpuyard.scheduler.resize import resize_in_place
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.scheduling.snapshot_rows import allocation_to_replica, server_to_view
from gpuyard.services.workloads.submission import load_workload
from gpuyard.services.workloads.transitions import record_change, transition_workload
from gpuyard.store.conversions import allocation_gpus, allocation_resources, workload_request
from gpuyard.store.fleet import cluster_kind, fresh_server_row, server_row
from gpuyard.store.reservations import (
    ReservationConflict,
    release_resources,
    reserve_resources,
)
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow
from gpuyard.store.workloads import delete_workload_row, set_request


@dataclass
class WorkloadChanges:
    """Fields of a PATCH; None means "leave as it is"."""

    cpu: float | None = None
    ram_gb: float | None = None
    storage_gb: float | None = None
    gpu: float | None = None
    gpu_model: str | None = None
    priority: int | None = None
    preemptible: bool | None = None


def update_workload(
    ctx: ServiceContext, caller: Caller, workload_id: str, changes: WorkloadChanges
) -> None:
    """Apply a PATCH. A running workload is resized in place when it still fits on its
    servers, atomically; otherwise it gives its reservation back and is re-queued.
    (Read the result with ``get_workload``: what the caller may see of it.)"""
    now = ctx.now()
    with ctx.db.write() as session:
        row = load_workload(session, caller, workload_id, Permission.WORKLOAD_CHANGE)
        status = WorkloadStatus(row.status)
        if status in TERMINAL:
            raise Conflict(f"workload {row.name!r} is {status.value}; it cannot be changed")
        current = workload_request(row)
        new = Resources.from_api(
            _pick(changes.cpu, current.cpu),
            _pick(changes.ram_gb, current.ram_gb),
            _pick(changes.storage_gb, current.storage_gb),
            _pick(changes.gpu, current.gpu),
        )
        if new.is_zero():
            raise InvalidInput.for_field("cpu", "a workload must ask for some resources")
        gpu_model = changes.gpu_model if changes.gpu_model is not None else row.gpu_model
        if changes.gpu_model is not None and new.gpu_milli == 0:
            raise InvalidInput.for_field("gpu_model", "only meaningful with gpu > 0")
        if changes.priority is not None and changes.priority != row.priority:
            record_change(
                session,
                row,
                f"priority {row.priority} -> {changes.priority}",
                now,
                {"priority": changes.priority},
            )
            row.priority = changes.priority
        if changes.preemptible is not None:
            row.preemptible = changes.preemptible
        row.gpu_model = gpu_model
        resized = new != current
        if resized and status in HOLDS_RESOURCES:
            container_kinds = ctx.runtimes.kinds_where(runs_containers)
            _resize_reservations(session, row, new, now, container_kinds)
        set_request(row, new, now)
        changed = {k: v for k, v in vars(changes).items() if v is not None}
        record_audit(
            session, AuditActor.of(caller), "workload.update", "workload", row.id, now, changed
        )
    ctx.scheduler_wakeup.notify()


def _pick(value: float | None, current: float) -> float:
    return current if value is None else value


def _resize_reservations(
    session: Session,
    row: WorkloadRow,
    new: Resources,
    now: datetime,
    container_kinds: Collection[str],
) -> None:
    """Resize every replica in place, or release all and re-queue the workload.

    Only reservations without a container resize in place: a running container keeps the
    GPUs and limits it was created with, so moving its reservation would hand its devices
    to someone else while it still uses them. Those are re-queued and recreated instead."""
    why: str | None = None
    for allocation in list(row.allocations):
        server = server_row(session, allocation.server_id)
        name = server.name if server else allocation.server_id
        kind = cluster_kind(session, server.cluster_id) if server else None
        if allocation.container_id is not None or (kind is not None and kind in container_kinds):
            why = f"containers on {name} are recreated with the new size"
            break
        if not _resize_one(session, row, allocation, new):
            why = f"no longer fits on {name}"
            break
    if why is None:
        gpus = sorted({i for a in row.allocations for i, _ in a.gpu_allocation})
        record_change(
            session, row, f"resized in place to {new.describe()}", now, {"gpu_indices": gpus}
        )
        return
    release_workload(session, row)
    transition_workload(
        session,
        row,
        WorkloadStatus.PENDING,
        f"resized to {new.describe()}; {why}; re-queued",
        now,
        reason_code="resized",
    )


def _resize_one(
    session: Session, row: WorkloadRow, allocation: AllocationRow, new: Resources
) -> bool:
    server = fresh_server_row(session, allocation.server_id)
    if server is None:
        return False
    gpu_allocation = resize_in_place(
        server_to_view(server), allocation_to_replica(row, allocation), new, row.gpu_model
    )
    if gpu_allocation is None:
        return False
    old_resources, old_gpus = allocation_resources(allocation), allocation_gpus(allocation)
    release_resources(session, server.id, old_resources, old_gpus)
    try:
        with session.begin_nested():
            reserve_resources(session, server.id, new, gpu_allocation, require_online=False)
    except ReservationConflict:
        reserve_resources(session, server.id, old_resources, old_gpus, require_online=False)
        return False
    allocation.cpu_milli, allocation.ram_mib = new.cpu_milli, new.ram_mib
    allocation.storage_mib, allocation.gpu_milli = new.storage_mib, new.gpu_milli
    allocation.gpu_allocation = [[i, m] for i, m in gpu_allocation]
    return True


def stop_workload(ctx: ServiceContext, caller: Caller, workload_id: str) -> None:
    """Stop a workload: release what it holds; it stays listed as ``stopped``."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = load_workload(session, caller, workload_id, Permission.WORKLOAD_CHANGE)
        status = WorkloadStatus(row.status)
        if status in TERMINAL:
            raise Conflict(f"workload {row.name!r} is already {status.value}")
        release_workload(session, row)
        transition_workload(session, row, WorkloadStatus.STOPPED, f"stopped by {caller.email}", now)
        record_audit(
            session,
            AuditActor.of(caller),
            "workload.stop",
            "workload",
            row.id,
            now,
            {"name": row.name},
        )
    ctx.scheduler_wakeup.notify()


def delete_workload(ctx: ServiceContext, caller: Caller, workload_id: str) -> None:
    """Delete a workload and its history, stopping it first if it is still active."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = load_workload(session, caller, workload_id, Permission.WORKLOAD_CHANGE)
        if WorkloadStatus(row.status) not in TERMINAL:
            release_workload(session, row)
            transition_workload(
                session, row, WorkloadStatus.STOPPED, f"deleted by {caller.email}", now
            )
            session.flush()
        record_audit(
            session,
            AuditActor.of(caller),
            "workload.delete",
            "workload",
            row.id,
            now,
            {"name": row.name},
        )
        delete_workload_row(session, row)
    ctx.scheduler_wakeup.notify()
