"""Changing workloads: resize / re-prioritise (PATCH), stop and delete.

Each change is one transaction on the workload as it reads it. Another writer may change
the row in between (the scheduler placing it, the starter recording its container, a
second request): the change then loses its compare-and-set (docs/concurrency.md, rule 1),
rolls back, and is decided again on a fresh read (:func:`_retry_lost_races`), so a user's
stop or resize is not refused because a loop was busy with the same workload.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.errors import Conflict, InvalidInput, NotFound
from gpuyard.domain.priority import priority_problem
from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.domain.workload_state import HOLDS_RESOURCES, TERMINAL, WorkloadStatus
from gpuyard.runtimes.base import RuntimeFailure
from gpuyard.runtimes.registry import resizes_in_place, runs_containers, whole_gpus_only
from gpuyard.scheduler.gpu_match import model_problem
from gpuyard.scheduler.resize import resize_in_place
from gpuyard.scheduler.snapshot import PendingWorkload
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.scheduling.snapshot_rows import allocation_to_replica, server_to_view
from gpuyard.services.workloads.limit_checks import check_resize_limits
from gpuyard.services.workloads.submission import (
    gpu_models_in_scope,
    load_workload,
    never_fits_errors,
)
from gpuyard.services.workloads.transitions import record_change, transition_workload
from gpuyard.store.conversions import allocation_gpus, allocation_resources, workload_request
from gpuyard.store.database import lost_lock_race
from gpuyard.store.fleet import cluster_kind, fresh_server_row, server_row
from gpuyard.store.identity_tables import TeamRow
from gpuyard.store.reservations import (
    ReservationConflict,
    release_resources,
    reserve_resources,
)
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow
from gpuyard.store.workloads import delete_workload_row, set_request

T = TypeVar("T")

#: Tries of one change, in all, before a workload that keeps changing under it is a 409.
CHANGE_ATTEMPTS = 5
#: Pause before the next try, times the tries so far: the other writer's transaction is
#: usually a few milliseconds long.
_RETRY_PAUSE_S = 0.005


def _retry_lost_races(workload_id: str, change: Callable[[], T]) -> T:
    """Run ``change`` (one write transaction, rolled back when it raises) until it does
    not lose a race: a stale workload version, a reservation that moved, a PostgreSQL
    deadlock or serialization failure. After CHANGE_ATTEMPTS lost races, Conflict (409)."""
    for attempt in range(1, CHANGE_ATTEMPTS + 1):
        try:
            return change()
        except (StaleDataError, ReservationConflict):
            pass
        except DBAPIError as exc:
            if not lost_lock_race(exc):
                raise
        time.sleep(_RETRY_PAUSE_S * attempt)
    raise Conflict(
        f"workload {workload_id} kept changing while this request tried to change it "
        f"({CHANGE_ATTEMPTS} tries); try again"
    )


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
    new, in_place = _retry_lost_races(
        workload_id, lambda: _apply_update(ctx, caller, workload_id, changes, now)
    )
    if in_place:
        _resize_replicas(ctx, workload_id, new, in_place)
    ctx.scheduler_wakeup.notify()


def _apply_update(
    ctx: ServiceContext,
    caller: Caller,
    workload_id: str,
    changes: WorkloadChanges,
    now: datetime,
) -> tuple[Resources, list[_ReplicaResize]]:
    """One try of a PATCH, in one transaction: the new request, and the replicas whose
    runtime is to be told of a resize in place."""
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
            shares=ctx.settings.gpu_shares,
            # Kept as submitted: a share stays bound to the memory it asked for.
            gpu_memory_gb=current.gpu_memory_gb,
        )
        if new.is_zero():
            raise InvalidInput.for_field("cpu", "a workload must ask for some resources")
        if new.gpu_milli % GPU_MILLI:
            _refuse_gpu_share(ctx, session, row, new)
        gpu_model = changes.gpu_model if changes.gpu_model is not None else row.gpu_model
        if changes.gpu_model is not None and new.gpu_milli == 0:
            raise InvalidInput.for_field("gpu_model", "only meaningful with gpu > 0")
        model_error = model_problem(changes.gpu_model) if changes.gpu_model else None
        if model_error is not None:
            raise InvalidInput.for_field("gpu_model", model_error)
        if changes.priority is not None and changes.priority != row.priority:
            _check_priority_policy(ctx, session, caller, row, changes.priority)
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
        resized = new != current
        if resized or gpu_model != row.gpu_model:
            # A resize no server could ever hold is refused, not evicted into a queue it
            # would never leave (issue 21).
            pending = PendingWorkload(
                workload_id=row.id,
                priority=row.priority,
                submitted_at=0.0,
                resources=new,
                gpu_model=gpu_model,
                cluster_id=row.cluster_id,
                node_selector=dict(row.node_selector or {}),
            )
            found = never_fits_errors(ctx, session, pending)
            if found:
                raise InvalidInput.for_fields(found)
            # Nor one past its team's limits: 422 alone, 409 with the team's other work
            # while it holds resources (nothing written; it keeps its size).
            check_resize_limits(
                session,
                row,
                current,
                new,
                gpu_model,
                ctx.snapshot_cache.personal_quota,
                holds_resources=status in HOLDS_RESOURCES,
                fleet_models=lambda: gpu_models_in_scope(ctx, session, row.cluster_id),
            )
        row.gpu_model = gpu_model
        in_place: list[_ReplicaResize] = []
        if resized and status in HOLDS_RESOURCES:
            container_kinds = ctx.runtimes.kinds_where(runs_containers)
            resizable = ctx.runtimes.kinds_where(resizes_in_place)
            keeps_devices = (new.gpu_milli, new.storage_mib, new.gpu_memory_mib) == (
                current.gpu_milli,
                current.storage_mib,
                current.gpu_memory_mib,
            )
            in_place = _resize_reservations(
                session, row, new, now, container_kinds, resizable if keeps_devices else ()
            )
        set_request(row, new, now)
        changed = {k: v for k, v in vars(changes).items() if v is not None}
        record_audit(
            session, AuditActor.of(caller), "workload.update", "workload", row.id, now, changed
        )
    return new, in_place


def _check_priority_policy(
    ctx: ServiceContext, session: Session, caller: Caller, row: WorkloadRow, priority: int
) -> None:
    """Refuse (422 naming ``priority``) a new priority above what the caller's role, or
    the workload's team, may use (domain/priority.py). A priority set before the policy
    was tightened stays until it is changed."""
    team = session.get(TeamRow, row.team_id) if row.team_id is not None else None
    problem = priority_problem(
        priority,
        caller.role,
        ctx.settings.max_priority_of(caller.role),
        team.name if team is not None else None,
        team.max_priority if team is not None else None,
    )
    if problem is not None:
        raise InvalidInput.for_field("priority", problem)


@dataclass(frozen=True)
class _ReplicaResize:
    """A running replica whose reservation was resized in place: its runtime is told."""

    kind: str
    handle: str
    server_name: str


def _resize_replicas(
    ctx: ServiceContext, workload_id: str, new: Resources, replicas: list[_ReplicaResize]
) -> None:
    """Outside any transaction, ask each replica's runtime to resize it in place; then
    record that it was, or, where a runtime could not, replace the replicas (release,
    re-queue: they are recreated with the new size), the event saying which."""
    refused: str | None = None
    for replica in replicas:
        try:
            done = ctx.runtimes.for_kind(replica.kind).resize(
                replica.handle, new.cpu_milli, new.ram_mib
            )
        except (RuntimeFailure, NotFound) as exc:
            refused = f"{replica.server_name}: {exc}"[:300]
            break
        if not done:
            refused = f"the runtime of {replica.server_name} cannot resize it in place"
            break
    now = ctx.now()
    _retry_lost_races(
        workload_id, lambda: _record_resize(ctx, workload_id, new, replicas, refused, now)
    )


def _record_resize(
    ctx: ServiceContext,
    workload_id: str,
    new: Resources,
    replicas: list[_ReplicaResize],
    refused: str | None,
    now: datetime,
) -> None:
    """What the runtimes said of a resize in place: recorded, or the workload replaced."""
    with ctx.db.write() as session:
        row = session.get(WorkloadRow, workload_id, populate_existing=True)
        if row is None or WorkloadStatus(row.status) not in HOLDS_RESOURCES:
            return  # stopped or re-queued meanwhile: nothing of this size runs any more
        handles = [r.handle for r in replicas]
        if refused is None:
            record_change(
                session,
                row,
                f"resized in place to {new.describe()} (its replicas resized, not restarted)",
                now,
                {"resized_in_place": handles},
            )
            return
        release_workload(session, row)
        transition_workload(
            session,
            row,
            WorkloadStatus.PENDING,
            f"resized to {new.describe()}; not resized in place ({refused}): replaced, re-queued",
            now,
            reason_code="resized",
        )


def _refuse_gpu_share(
    ctx: ServiceContext, session: Session, row: WorkloadRow, new: Resources
) -> None:
    """A share of a GPU is refused (422 on ``gpu``, before anything is written or
    released) for a workload that names a cluster whose runtime gives whole GPUs only
    (kubernetes: device plugins hand out whole ``nvidia.com/gpu``), or holds replicas on
    one of its servers: re-queueing it would evict it for a size it can never have
    there."""
    whole_only = frozenset(ctx.runtimes.kinds_where(whole_gpus_only))
    if not whole_only:
        return
    where: list[tuple[str, str]] = []  # (kind, what) that takes whole GPUs only
    if row.cluster_id is not None:
        kind = cluster_kind(session, row.cluster_id)
        if kind in whole_only:
            where.append((kind, "the cluster it names"))
    for allocation in row.allocations:
        server = server_row(session, allocation.server_id)
        kind = cluster_kind(session, server.cluster_id) if server else None
        if server is not None and kind in whole_only:
            where.append((kind, f"server {server.name}, where it runs"))
    if where:
        kind, what = where[0]
        raise InvalidInput.for_field(
            "gpu",
            f"{what} is in a {kind} cluster, which gives whole GPUs only (its device plugin "
            f"hands out whole devices): ask for a whole number, not {new.gpu_milli / GPU_MILLI:g}",
        )


def _pick(value: float | None, current: float) -> float:
    return current if value is None else value


def _resize_reservations(
    session: Session,
    row: WorkloadRow,
    new: Resources,
    now: datetime,
    container_kinds: Collection[str],
    resizable_kinds: Collection[str] = (),
) -> list[_ReplicaResize]:
    """Resize every replica in place, or release all and re-queue the workload.

    Reservations without a container resize in place. A running container keeps the GPUs
    and limits it was created with, so moving its reservation would hand its devices to
    someone else while it still uses them: it is re-queued and recreated instead, unless
    its runtime resizes in place (``resizable_kinds``: only given when GPUs and storage
    stay as they are), when its reservation is resized here and the replicas to tell the
    runtime about are returned (``_resize_replicas``, after the commit)."""
    why: str | None = None
    replicas: list[_ReplicaResize] = []
    for allocation in list(row.allocations):
        server = server_row(session, allocation.server_id)
        name = server.name if server else allocation.server_id
        kind = cluster_kind(session, server.cluster_id) if server else None
        handle = allocation.container_id
        if kind is not None and kind in resizable_kinds and handle is not None:
            if not _resize_one(session, row, allocation, new):
                why = f"no longer fits on {name}"
                break
            replicas.append(_ReplicaResize(kind, handle, name))
            continue
        if handle is not None or (kind is not None and kind in container_kinds):
            why = f"containers on {name} are recreated with the new size"
            break
        if not _resize_one(session, row, allocation, new):
            why = f"no longer fits on {name}"
            break
    if why is None:
        if replicas:
            return replicas  # recorded once their runtime says how it went
        gpus = sorted({i for a in row.allocations for i, _ in a.gpu_allocation})
        record_change(
            session, row, f"resized in place to {new.describe()}", now, {"gpu_indices": gpus}
        )
        return []
    release_workload(session, row)
    transition_workload(
        session,
        row,
        WorkloadStatus.PENDING,
        f"resized to {new.describe()}; {why}; re-queued",
        now,
        reason_code="resized",
    )
    return []


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
    allocation.gpu_memory_mib = new.gpu_memory_mib
    allocation.gpu_allocation = [[i, m] for i, m in gpu_allocation]
    return True


def stop_workload(ctx: ServiceContext, caller: Caller, workload_id: str) -> None:
    """Stop a workload: release what it holds; it stays listed as ``stopped``."""
    now = ctx.now()
    _retry_lost_races(workload_id, lambda: _stop(ctx, caller, workload_id, now))
    ctx.scheduler_wakeup.notify()


def _stop(ctx: ServiceContext, caller: Caller, workload_id: str, now: datetime) -> None:
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


def delete_workload(ctx: ServiceContext, caller: Caller, workload_id: str) -> None:
    """Delete a workload and its history, stopping it first if it is still active."""
    now = ctx.now()
    _retry_lost_races(workload_id, lambda: _delete(ctx, caller, workload_id, now))
    ctx.scheduler_wakeup.notify()


def _delete(ctx: ServiceContext, caller: Caller, workload_id: str, now: datetime) -> None:
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
