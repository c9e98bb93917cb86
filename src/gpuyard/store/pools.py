"""Warm pools: their specs, their members (workload rows with pool columns) and the
compare-and-set that hands one member to a launch. Nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, aliased

from gpuyard.domain.pools import (
    POOL_OWNER_EMAIL,
    POOL_OWNER_ID,
    PoolFailures,
    PoolMember,
    PoolSpec,
    PoolState,
    WarmShape,
)
from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus, accepts_new_work
from gpuyard.domain.workload_state import ACTIVE, HOLDS_RESOURCES, WorkloadStatus
from gpuyard.store.base import as_utc
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.pool_tables import PoolRow
from gpuyard.store.runtime_tables import PortAllocationRow
from gpuyard.store.workload_tables import WORKLOADS_TABLE, AllocationRow, WorkloadRow

_ACTIVE = [s.value for s in ACTIVE]
_OPEN_STATUSES = [s.value for s in ServerStatus if accepts_new_work(s)]
_w = WORKLOADS_TABLE.c


def pool_record(row: PoolRow) -> PoolSpec:
    """The read model of a pool row."""
    return PoolSpec(
        id=row.id,
        name=row.name,
        image_type=row.image_type,
        image=row.image,
        server_id=row.server_id,
        cluster_id=row.cluster_id,
        target_size=row.target_size,
        port_min=row.port_min,
        port_max=row.port_max,
        container_port=row.container_port,
        request=Resources(row.cpu_milli, row.ram_mib, row.storage_mib, row.gpu_milli),
        command=list(row.command) if row.command is not None else None,
        env=dict(row.env or {}),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        files_path=row.files_path,
    )


def pool_row(session: Session, pool_id: str, *, lock: bool = False) -> PoolRow | None:
    """The pool (``lock``: FOR UPDATE, so resizes and deletes of one pool queue)."""
    query = select(PoolRow).where(PoolRow.id == pool_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def pools_of_place(
    session: Session, *, server_id: str | None = None, cluster_id: str | None = None
) -> list[PoolRow]:
    """The pools on one server or of one cluster, locked (FOR UPDATE, by id: one order for
    every taker), so a pool loop tick on one of them finishes first."""
    query = select(PoolRow).order_by(PoolRow.id).with_for_update()
    if server_id is not None:
        query = query.where(PoolRow.server_id == server_id)
    if cluster_id is not None:
        query = query.where(PoolRow.cluster_id == cluster_id)
    return list(session.scalars(query))


def orphaned_available(session: Session) -> list[WorkloadRow]:
    """Available warm containers, not finished, whose pool is gone (a pool deleted with its
    server or cluster by an older version, or by hand)."""
    return list(
        session.scalars(
            select(WorkloadRow).where(
                WorkloadRow.pool_id.is_(None),
                WorkloadRow.pool_state == PoolState.AVAILABLE.value,
                WorkloadRow.status.in_(_ACTIVE),
            )
        )
    )


def pool_rows(session: Session, limit: int | None = None, offset: int = 0) -> list[PoolRow]:
    """Pools by name."""
    query = select(PoolRow).order_by(PoolRow.name).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def count_pools(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(PoolRow)) or 0)


def pool_name_taken(session: Session, name: str, except_id: str | None = None) -> bool:
    query = select(PoolRow.id).where(PoolRow.name == name)
    if except_id is not None:
        query = query.where(PoolRow.id != except_id)
    return session.scalar(query) is not None


def ensure_pool_owner(session: Session) -> None:
    """The pools' built-in owner exists (migration 0013 made it; a database emptied of
    users since, as tests do, gets it back). It cannot log in: inactive, and "!" is no
    password hash."""
    if session.get(UserRow, POOL_OWNER_ID) is None:
        session.add(
            UserRow(
                id=POOL_OWNER_ID,
                email=POOL_OWNER_EMAIL,
                password_hash="!",  # noqa: S106 - no hash: nothing verifies
                role="user",
                is_active=False,
            )
        )
        session.flush()


def active_members(session: Session, pool_ids: Iterable[str]) -> dict[str, list[PoolMember]]:
    """pool id -> its members that are not finished (any state), by pool index."""
    ids = list(pool_ids)
    found: dict[str, list[PoolMember]] = {pool_id: [] for pool_id in ids}
    if not ids:
        return found
    w = WorkloadRow
    rows = session.execute(
        select(w.id, w.pool_id, w.pool_index, w.pool_state, w.status, w.owner_id, w.name)
        .where(w.pool_id.in_(ids), w.status.in_(_ACTIVE), w.pool_state.is_not(None))
        .order_by(w.pool_index, w.created_at)
    ).all()
    placed = _placements(session, [r.id for r in rows])
    for row in rows:
        server_id, host_port, container_id = placed.get(row.id, (None, None, None))
        found[row.pool_id].append(
            PoolMember(
                workload_id=row.id,
                pool_index=int(row.pool_index or 0),
                state=PoolState(row.pool_state),
                status=row.status,
                owner_id=row.owner_id,
                name=row.name,
                server_id=server_id,
                host_port=host_port,
                container_id=container_id,
            )
        )
    return found


def _placements(
    session: Session, workload_ids: Sequence[str]
) -> dict[str, tuple[str, int | None, str | None]]:
    """workload id -> (server, host port, container handle) of its replica 0."""
    if not workload_ids:
        return {}
    a, p = AllocationRow, PortAllocationRow
    rows = session.execute(
        select(a.workload_id, a.server_id, p.host_port, a.container_id)
        .outerjoin(p, p.allocation_id == a.id)
        .where(a.workload_id.in_(list(workload_ids)), a.replica == 0)
    ).all()
    return {r.workload_id: (r.server_id, r.host_port, r.container_id) for r in rows}


@dataclass(frozen=True)
class WarmCandidate:
    """An available warm container that might be handed to a launch."""

    workload_id: str
    version: int
    pool_id: str
    server_id: str
    #: The cluster of the server it runs on.
    cluster_id: str
    #: What it runs, from its own row (not the pool's current spec).
    shape: WarmShape


def warm_candidates(
    session: Session, image: str, request: Resources, limit: int = 16
) -> list[WarmCandidate]:
    """Running (so with every container recorded, where the runtime has containers),
    available warm containers that run ``image`` with exactly ``request`` (their own
    rows' values: a pool changed since keeps its older containers until they are
    replaced), lowest pool index first. Read without a lock: the claim's compare-and-set
    decides. Only on servers that accept new work (a draining one hands out nothing)."""
    w, a, s = WorkloadRow, AllocationRow, ServerRow
    rows = session.execute(
        select(
            w.id,
            w.version,
            w.pool_id,
            w.image,
            w.command,
            w.env,
            w.ports,
            w.files_path,
            a.server_id,
            s.cluster_id,
        )
        .join(a, (a.workload_id == w.id) & (a.replica == 0))
        .join(s, s.id == a.server_id)
        .where(
            w.pool_id.is_not(None),
            s.status.in_(_OPEN_STATUSES),
            w.image == image,
            w.pool_state == PoolState.AVAILABLE.value,
            w.status == WorkloadStatus.RUNNING.value,
            w.cpu_milli == request.cpu_milli,
            w.ram_mib == request.ram_mib,
            w.storage_mib == request.storage_mib,
            w.gpu_milli == request.gpu_milli,
        )
        .order_by(w.pool_index, w.id)
        .limit(limit)
    ).all()
    return [
        WarmCandidate(
            r.id,
            r.version,
            r.pool_id,
            r.server_id,
            r.cluster_id,
            WarmShape(
                image=r.image,
                request=request,
                command=list(r.command) if r.command is not None else None,
                env=dict(r.env or {}),
                ports=[int(p) for p in r.ports or []],
                files_path=r.files_path,
            ),
        )
        for r in rows
    ]


def failure_streaks(
    session: Session, pool_ids: Iterable[str], since: datetime
) -> dict[str, PoolFailures]:
    """pool id -> its available warm containers that failed after ``since`` and after the
    latest start of a member that did not fail (pools with none are left out)."""
    ids = list(pool_ids)
    if not ids:
        return {}
    w, ok = WorkloadRow, aliased(WorkloadRow)
    failed = WorkloadStatus.FAILED.value
    last_start = (
        select(func.max(ok.started_at))
        .where(ok.pool_id == w.pool_id, ok.status != failed)
        .correlate(w)
        .scalar_subquery()
    )
    in_streak = (
        w.pool_id.in_(ids),
        # A claimed one that failed is its user's work failing, not the pool's spec.
        w.pool_state == PoolState.AVAILABLE.value,
        w.status == failed,
        w.finished_at.is_not(None),
        w.finished_at >= since,
        or_(last_start.is_(None), w.finished_at > last_start),
    )
    counted = session.execute(
        select(w.pool_id, func.count(), func.min(w.finished_at), func.max(w.finished_at))
        .where(*in_streak)
        .group_by(w.pool_id)
    ).all()
    found: dict[str, PoolFailures] = {}
    for pool_id, count, first_at, last_at in counted:
        if pool_id is None or first_at is None or last_at is None:
            continue  # not selected (the WHERE says so); for the type checker
        reason = session.scalar(
            select(w.reason)
            .where(*in_streak, w.pool_id == pool_id, w.finished_at == last_at)
            .limit(1)
        )
        found[pool_id] = PoolFailures(int(count), as_utc(first_at), as_utc(last_at), reason)
    return found


def server_statuses(session: Session, server_ids: Iterable[str]) -> dict[str, str]:
    """server id -> its status."""
    ids = list(set(server_ids))
    if not ids:
        return {}
    query = select(ServerRow.id, ServerRow.status).where(ServerRow.id.in_(ids))
    return {server_id: status for server_id, status in session.execute(query)}


def claim_warm(session: Session, candidate: WarmCandidate, values: Mapping[str, Any]) -> bool:
    """Hand one warm container to a launch: an UPDATE that matches only while the row is
    still available, running and at the version read (the workload version's
    compare-and-set, docs/concurrency.md #4), bumping the version. False: another launch
    (or the pool loop, or a preemption) changed it first."""
    result = session.execute(
        update(WORKLOADS_TABLE)
        .where(
            _w.id == candidate.workload_id,
            _w.version == candidate.version,
            _w.pool_state == PoolState.AVAILABLE.value,
            _w.status == WorkloadStatus.RUNNING.value,
        )
        .values(
            version=_w.version + 1,
            pool_state=PoolState.ASSIGNED.value,
            from_pool=True,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def pool_port_range(session: Session, workload_id: str) -> tuple[int, int] | None:
    """The host port range of the pool a warm container belongs to (None: not one)."""
    row = session.execute(
        select(PoolRow.port_min, PoolRow.port_max)
        .join(WorkloadRow, WorkloadRow.pool_id == PoolRow.id)
        .where(WorkloadRow.id == workload_id)
    ).one_or_none()
    return (int(row.port_min), int(row.port_max)) if row is not None else None


def pool_types(session: Session, pool_ids: Iterable[str | None]) -> dict[str, str]:
    """pool id -> image type."""
    ids = [pool_id for pool_id in pool_ids if pool_id is not None]
    if not ids:
        return {}
    query = select(PoolRow.id, PoolRow.image_type).where(PoolRow.id.in_(ids))
    return {pool_id: image_type for pool_id, image_type in session.execute(query)}


def member_rows(session: Session, pool_id: str) -> list[WorkloadRow]:
    """The pool's unfinished members as ORM rows (for the admin operations)."""
    return list(
        session.scalars(
            select(WorkloadRow)
            .where(WorkloadRow.pool_id == pool_id, WorkloadRow.status.in_(_ACTIVE))
            .order_by(WorkloadRow.pool_index)
        )
    )


def detach_finished(session: Session, pool_id: str) -> None:
    """Finished members forget their pool (before the pool row is deleted; the foreign
    key would do it too, but SQLite enforces ON DELETE only with foreign keys on)."""
    session.execute(
        update(WORKLOADS_TABLE)
        .where(_w.pool_id == pool_id)
        .values(pool_id=None)
        .execution_options(synchronize_session=False)
    )


def members_with_containers(session: Session, server_ids: Sequence[str]) -> list[WorkloadRow]:
    """Warm containers (available or assigned) holding resources on ``server_ids`` with a
    container recorded, with their allocations."""
    held = [s.value for s in HOLDS_RESOURCES]
    on_servers = select(AllocationRow.workload_id).where(
        AllocationRow.server_id.in_(list(server_ids)), AllocationRow.container_id.is_not(None)
    )
    return list(
        session.scalars(
            select(WorkloadRow).where(
                WorkloadRow.pool_id.is_not(None),
                WorkloadRow.pool_state.is_not(None),
                WorkloadRow.status.in_(held),
                WorkloadRow.id.in_(on_servers),
            )
        )
    )
