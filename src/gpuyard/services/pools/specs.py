"""Pool specs and the admin operations: create, list with status, change (resize),
reinitialise, release an assigned container back, delete. Admins and operators
(``Permission.POOL_MANAGE``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.files_paths import DEFAULT_FILES_PATH, files_path_problem
from gpuyard.domain.pools import (
    FAILURE_WINDOW_S,
    PoolState,
    PoolStatus,
    is_image_type,
)
from gpuyard.domain.resources import Resources
from gpuyard.domain.workload_state import TERMINAL, WorkloadStatus
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.workloads.transitions import transition_workload
from gpuyard.store import pools as pool_store
from gpuyard.store.fleet import cluster_exists, server_row
from gpuyard.store.pool_tables import PoolRow
from gpuyard.store.workload_tables import WorkloadRow

#: The most warm containers one pool may keep (the table's CHECK says the same).
MAX_TARGET_SIZE = 256


@dataclass(frozen=True)
class PoolDefinition:
    """What an administrator gives to create a pool (bounds checked by the API schema)."""

    name: str
    image_type: str
    image: str
    server_id: str | None
    cluster_id: str | None
    target_size: int
    port_min: int
    port_max: int
    container_port: int | None
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float = 0.0
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: Where each warm container's files directory is mounted (domain/files_paths.py).
    files_path: str = DEFAULT_FILES_PATH


@dataclass(frozen=True)
class PoolChanges:
    """A PATCH of a pool; None: unchanged. Changing what a warm container is (the image)
    stops the available warm containers; the pool loop refills from the new spec."""

    target_size: int | None = None
    image: str | None = None
    port_min: int | None = None
    port_max: int | None = None


def create_pool(ctx: ServiceContext, caller: Caller, spec: PoolDefinition) -> PoolStatus:
    """Record a pool; the pool loop fills it (woken at once)."""
    request = Resources.from_api(
        spec.cpu, spec.ram_gb, spec.storage_gb, spec.gpu, shares=ctx.settings.gpu_shares
    )
    errors = _static_errors(spec, request)
    now = ctx.now()
    with ctx.db.write() as session:
        errors += _database_errors(session, spec)
        if errors:
            raise InvalidInput.for_fields(errors)
        row = PoolRow(
            name=spec.name,
            image_type=spec.image_type,
            image=spec.image.strip(),
            server_id=spec.server_id,
            cluster_id=spec.cluster_id,
            target_size=spec.target_size,
            port_min=spec.port_min,
            port_max=spec.port_max,
            container_port=spec.container_port,
            cpu_milli=request.cpu_milli,
            ram_mib=request.ram_mib,
            storage_mib=request.storage_mib,
            gpu_milli=request.gpu_milli,
            command=list(spec.command) if spec.command is not None else None,
            env=dict(spec.env),
            files_path=spec.files_path.rstrip("/"),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        details = {"name": row.name, "size": row.target_size}
        _audit(session, caller, "pool.create", row.id, now, details)
        status = PoolStatus(pool_store.pool_record(row), ())
    ctx.pool_wakeup.notify()
    return status


def _static_errors(spec: PoolDefinition, request: Resources) -> list[FieldError]:
    errors: list[FieldError] = []
    if not is_image_type(spec.image_type):
        errors.append(FieldError("image_type", "1-32 characters: a-z, 0-9 or '-'"))
    if not spec.image.strip():
        errors.append(FieldError("image", "must not be empty"))
    if (spec.server_id is None) == (spec.cluster_id is None):
        message = "give exactly one of server_id and cluster_id"
        errors += [FieldError("server_id", message), FieldError("cluster_id", message)]
    if spec.port_min > spec.port_max:
        errors.append(FieldError("port_max", "must be at least port_min"))
    elif spec.container_port is not None and spec.port_max - spec.port_min + 1 < spec.target_size:
        errors.append(FieldError("port_max", "the range has fewer ports than target_size"))
    if request.is_zero():
        errors.append(FieldError("cpu", "a warm container must reserve some resources"))
    problem = files_path_problem(spec.files_path)
    if problem is not None:
        errors.append(FieldError("files_path", problem))
    return errors


def _database_errors(session: Session, spec: PoolDefinition) -> list[FieldError]:
    errors: list[FieldError] = []
    if pool_store.pool_name_taken(session, spec.name):
        errors.append(FieldError("name", f"a pool named {spec.name!r} exists"))
    if spec.server_id is not None and server_row(session, spec.server_id) is None:
        errors.append(FieldError("server_id", f"server {spec.server_id!r} does not exist"))
    if spec.cluster_id is not None and not cluster_exists(session, spec.cluster_id):
        errors.append(FieldError("cluster_id", f"cluster {spec.cluster_id!r} does not exist"))
    return errors


def list_pools(ctx: ServiceContext, limit: int, offset: int) -> tuple[list[PoolStatus], int]:
    """Pools by name, each with its members; and how many pools there are."""
    with ctx.db.read() as session:
        rows = pool_store.pool_rows(session, limit, offset)
        ids = [r.id for r in rows]
        members = pool_store.active_members(session, ids)
        failures = pool_store.failure_streaks(session, ids, _failures_since(ctx))
        statuses = [
            PoolStatus(pool_store.pool_record(r), tuple(members[r.id]), failures.get(r.id))
            for r in rows
        ]
        return statuses, pool_store.count_pools(session)


def _failures_since(ctx: ServiceContext) -> datetime:
    return ctx.now() - timedelta(seconds=FAILURE_WINDOW_S)


def get_pool(ctx: ServiceContext, pool_id: str) -> PoolStatus:
    """One pool with its members."""
    with ctx.db.read() as session:
        row = _pool(session, pool_id)
        members = pool_store.active_members(session, [row.id])[row.id]
        failures = pool_store.failure_streaks(session, [row.id], _failures_since(ctx))
        return PoolStatus(pool_store.pool_record(row), tuple(members), failures.get(row.id))


def _pool(session: Session, pool_id: str, *, lock: bool = False) -> PoolRow:
    row = pool_store.pool_row(session, pool_id, lock=lock)
    if row is None:
        raise NotFound.for_object("pool", pool_id)
    return row


def update_pool(
    ctx: ServiceContext, caller: Caller, pool_id: str, changes: PoolChanges
) -> PoolStatus:
    """Resize (``target_size``) or change a pool; the pool loop grows or shrinks it. A
    new image stops the available warm containers (the loop refills them with it)."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _pool(session, pool_id, lock=True)
        port_min = changes.port_min if changes.port_min is not None else row.port_min
        port_max = changes.port_max if changes.port_max is not None else row.port_max
        target = changes.target_size if changes.target_size is not None else row.target_size
        if port_min > port_max:
            raise InvalidInput.for_fields([FieldError("port_max", "must be at least port_min")])
        if row.container_port is not None and port_max - port_min + 1 < target:
            # As at create: each warm container publishes on a port of its own.
            field = "target_size" if changes.target_size is not None else "port_max"
            message = f"the port range {port_min}-{port_max} has fewer ports than {target}"
            raise InvalidInput.for_fields([FieldError(field, message)])
        if changes.image is not None and not changes.image.strip():
            raise InvalidInput.for_fields([FieldError("image", "must not be empty")])
        before = row.target_size
        if changes.target_size is not None:
            row.target_size = changes.target_size
        new_image = changes.image.strip() if changes.image is not None else row.image
        # A changed container spec reaches the warm containers by replacing them: the
        # available ones stop now and the loop refills from the new spec (assigned ones
        # are users' and stay).
        respec = new_image != row.image
        row.image = new_image
        row.port_min, row.port_max = port_min, port_max
        row.updated_at = now
        session.flush()
        stopped = 0
        if respec:
            reason = f"pool {row.name} changed by {caller.email}: replaced by the new spec"
            stopped = _stop_available(session, row, reason, now)
        details = {"size_before": before, "size": row.target_size, "stopped": stopped}
        _audit(session, caller, "pool.update", row.id, now, details)
    if stopped:
        ctx.scheduler_wakeup.notify()
    ctx.pool_wakeup.notify()
    return get_pool(ctx, pool_id)


def reinitialise_pool(ctx: ServiceContext, caller: Caller, pool_id: str) -> PoolStatus:
    """Stop every available warm container of the pool (assigned ones are users' and
    stay); the pool loop starts fresh ones from the pool's current spec."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _pool(session, pool_id, lock=True)
        reason = f"pool {row.name} reinitialised by {caller.email}"
        stopped = _stop_available(session, row, reason, now)
        _audit(session, caller, "pool.reinitialise", row.id, now, {"stopped": stopped})
    ctx.scheduler_wakeup.notify()
    ctx.pool_wakeup.notify()
    return get_pool(ctx, pool_id)


def delete_pool(ctx: ServiceContext, caller: Caller, pool_id: str) -> None:
    """Delete a pool: its available warm containers stop; assigned ones stay their
    users' workloads (they forget the pool)."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _pool(session, pool_id, lock=True)
        reason = f"pool {row.name} deleted by {caller.email}"
        stopped = _stop_available(session, row, reason, now)
        session.flush()
        pool_store.detach_finished(session, row.id)
        _audit(session, caller, "pool.delete", row.id, now, {"name": row.name, "stopped": stopped})
        session.delete(row)
    ctx.scheduler_wakeup.notify()


def release_member(
    ctx: ServiceContext, caller: Caller, pool_id: str, workload_id: str
) -> PoolStatus:
    """Take an assigned warm container back from its user: their workload stops (an event
    names the admin) and the pool loop refills its place with a fresh container. The used
    container is never handed to the next launch: its files directory and its filesystem
    hold the previous user's data. Conflict when it is not assigned (any more)."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _pool(session, pool_id)
        member = session.get(WorkloadRow, workload_id, populate_existing=True)
        if member is None or member.pool_id != row.id:
            raise NotFound.for_object("pool container", workload_id)
        finished = WorkloadStatus(member.status) in TERMINAL
        if member.pool_state != PoolState.ASSIGNED.value or finished:
            raise Conflict(f"workload {member.name!r} is not an assigned container of this pool")
        reason = (
            f"released back to pool {row.name} by {caller.email}: a fresh container takes "
            "its place (a used one is never given to another user)"
        )
        _stop_member(session, member, reason, now)
        _audit(
            session,
            caller,
            "pool.release",
            row.id,
            now,
            {"workload_id": member.id, "owner_id": member.owner_id},
        )
    ctx.pool_wakeup.notify()
    ctx.scheduler_wakeup.notify()
    return get_pool(ctx, pool_id)


def lock_pools_of(
    session: Session, *, server_id: str | None = None, cluster_id: str | None = None
) -> list[PoolRow]:
    """Within a server's or cluster's delete, before anything else is locked: its pools,
    locked, so that a pool loop tick on them finishes first and the next finds them gone
    (the delete cascades to them). Pools first, then the cluster: the loop's insert takes
    them in that order too (its pool row, then the cluster's key)."""
    return pool_store.pools_of_place(session, server_id=server_id, cluster_id=cluster_id)


def retire_pools(session: Session, pools: list[PoolRow], reason: str, now: datetime) -> int:
    """Stop the available warm containers of ``pools`` (locked by :func:`lock_pools_of`),
    which their place's delete is about to take along: none is left pending with no
    pool, nor naming a cluster that goes. Assigned ones are users' and stay."""
    stopped = sum(_stop_available(session, pool, reason, now) for pool in pools)
    if stopped:
        session.flush()
    return stopped


def _stop_member(session: Session, member: WorkloadRow, reason: str, now: datetime) -> None:
    release_workload(session, member, reason="pool")
    transition_workload(session, member, WorkloadStatus.STOPPED, reason, now)


def _stop_available(session: Session, pool: PoolRow, reason: str, now: datetime) -> int:
    stopped = 0
    for member in pool_store.member_rows(session, pool.id):
        if member.pool_state != PoolState.AVAILABLE.value:
            continue
        _stop_member(session, member, reason, now)
        stopped += 1
    return stopped


def _audit(
    session: Session,
    caller: Caller,
    action: str,
    pool_id: str,
    now: datetime,
    details: Mapping[str, object],
) -> None:
    record_audit(session, AuditActor.of(caller), action, "pool", pool_id, now, dict(details))
