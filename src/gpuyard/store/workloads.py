"""The workloads repository: reads, submissions' inserts and events of workloads, mapped
to read models (domain/workload_records.py).

Status writes are not here: they go through the workload transition path. Functions take
the caller's Session and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, func, insert, select
from sqlalchemy.orm import Session

from gpuyard.domain.gpu_holders import GpuHolding, HeldBy
from gpuyard.domain.listing import WorkloadSort
from gpuyard.domain.resources import Resources
from gpuyard.domain.workload_records import ReplicaPlacement, Workload, WorkloadEvent
from gpuyard.domain.workload_state import ACTIVE, WorkloadStatus
from gpuyard.store.base import as_utc, as_utc_or_none
from gpuyard.store.conversions import workload_request
from gpuyard.store.fleet_tables import ClusterRow, ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.runtime_tables import PortAllocationRow
from gpuyard.store.workload_tables import (
    WORKLOADS_TABLE,
    AllocationRow,
    WorkloadEventRow,
    WorkloadRow,
)

_EVENTS_TABLE = cast(Table, WorkloadEventRow.__table__)


@dataclass(frozen=True)
class WorkloadFilter:
    """What a workload list is narrowed to; None (or empty) means "any"."""

    status: list[WorkloadStatus] | None = None
    cluster_id: str | None = None
    server_id: str | None = None
    owner_id: str | None = None
    team_id: str | None = None
    name: str | None = None
    #: Names that start with this, exactly (case-sensitive on every database).
    name_prefix: str | None = None
    sort: WorkloadSort = WorkloadSort.NEWEST
    #: Ids that start with this (lowercase hex, as ids are made).
    id_prefix: str | None = None


def workload_record(row: WorkloadRow) -> Workload:
    """The read model of a loaded row (its allocations are loaded with it)."""
    return Workload(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        team_id=row.team_id,
        cluster_id=row.cluster_id,
        status=row.status,
        reason=row.reason,
        reason_code=row.reason_code,
        image=row.image,
        command=row.command,
        env=dict(row.env or {}),
        plain_env_keys=tuple(row.plain_env_keys or ()),
        ports=tuple(row.ports or ()),
        request=workload_request(row),
        gpu_model=row.gpu_model,
        priority=row.priority,
        preemptible=row.preemptible,
        replicas=row.replicas,
        gang=row.gang,
        node_selector=dict(row.node_selector or {}),
        duration_s=row.duration_s,
        preemption_count=row.preemption_count,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        started_at=as_utc_or_none(row.started_at),
        finished_at=as_utc_or_none(row.finished_at),
        placements=tuple(
            ReplicaPlacement(
                allocation_id=a.id,
                replica=a.replica,
                server_id=a.server_id,
                gpus=tuple((int(i), int(m)) for i, m in a.gpu_allocation),
            )
            for a in row.allocations
        ),
        from_pool=row.from_pool,
        pool_id=row.pool_id,
        pool_index=row.pool_index,
        pool_state=row.pool_state,
        files_path=row.files_path,
        max_lifetime_s=row.max_lifetime_s,
    )


def insert_workloads(
    session: Session, workloads: Sequence[Workload], events: Sequence[Mapping[str, Any]]
) -> None:
    """Insert new workloads (version 1, pending since they were created), as their read
    models say, and their first events: one Core statement per table for the whole batch
    (the ORM's unit of work costs more than the rows on the busiest write path)."""
    session.execute(insert(WORKLOADS_TABLE), [_new_workload_values(w) for w in workloads])
    session.execute(insert(_EVENTS_TABLE), events)


def _new_workload_values(workload: Workload) -> dict[str, Any]:
    """The columns of a new workload's row (every one: Core sets no ORM defaults)."""
    request = workload.request
    return {
        "id": workload.id,
        "name": workload.name,
        "owner_id": workload.owner_id,
        "team_id": workload.team_id,
        "cluster_id": workload.cluster_id,
        "image": workload.image,
        "command": workload.command,
        "env": dict(workload.env),
        "plain_env_keys": list(workload.plain_env_keys),
        "ports": list(workload.ports),
        "node_selector": dict(workload.node_selector),
        "cpu_milli": request.cpu_milli,
        "ram_mib": request.ram_mib,
        "storage_mib": request.storage_mib,
        "gpu_milli": request.gpu_milli,
        "gpu_memory_mib": request.gpu_memory_mib,
        "gpu_model": workload.gpu_model,
        "priority": workload.priority,
        "preemptible": workload.preemptible,
        "replicas": workload.replicas,
        "gang": workload.gang,
        "duration_s": workload.duration_s,
        "files_path": workload.files_path,
        "max_lifetime_s": workload.max_lifetime_s,
        "status": workload.status,
        "reason": workload.reason,
        "reason_code": workload.reason_code,
        "version": 1,
        "preemption_count": workload.preemption_count,
        "pending_since": workload.created_at,
        "requeue_at": None,
        "started_at": workload.started_at,
        "finished_at": workload.finished_at,
        "created_at": workload.created_at,
        "updated_at": workload.updated_at,
        "pool_id": workload.pool_id,
        "pool_index": workload.pool_index,
        "pool_state": workload.pool_state,
        "from_pool": workload.from_pool,
    }


def workload_row(session: Session, workload_id: str) -> WorkloadRow | None:
    """The workload's row, to change it in this session (None when there is none)."""
    return session.get(WorkloadRow, workload_id)


def set_request(row: WorkloadRow, request: Resources, now: datetime) -> None:
    """Change what one replica asks for (the flush checks the row's version)."""
    row.cpu_milli, row.ram_mib = request.cpu_milli, request.ram_mib
    row.storage_mib, row.gpu_milli = request.storage_mib, request.gpu_milli
    row.gpu_memory_mib = request.gpu_memory_mib
    row.updated_at = now


def delete_workload_row(session: Session, row: WorkloadRow) -> None:
    """Delete the workload; its allocations and events go with it (cascade)."""
    session.delete(row)


def find_workloads(
    session: Session,
    visible: ColumnElement[bool],
    where: WorkloadFilter,
    limit: int,
    offset: int,
) -> tuple[list[Workload], int]:
    """Workloads matching ``visible`` and ``where``, newest first, with the total count."""
    query = select(WorkloadRow).where(visible)
    if where.status:
        query = query.where(WorkloadRow.status.in_([s.value for s in where.status]))
    if where.cluster_id:
        query = query.where(WorkloadRow.cluster_id == where.cluster_id)
    if where.owner_id:
        query = query.where(WorkloadRow.owner_id == where.owner_id)
    if where.team_id:
        query = query.where(WorkloadRow.team_id == where.team_id)
    if where.name:
        query = query.where(WorkloadRow.name == where.name)
    if where.name_prefix:
        # substr, not LIKE: SQLite's LIKE ignores case, PostgreSQL's does not.
        prefix = where.name_prefix
        query = query.where(func.substr(WorkloadRow.name, 1, len(prefix)) == prefix)
    if where.id_prefix:
        prefix = where.id_prefix
        query = query.where(func.substr(WorkloadRow.id, 1, len(prefix)) == prefix)
    if where.server_id:
        on_server = select(AllocationRow.workload_id).where(
            AllocationRow.server_id == where.server_id
        )
        query = query.where(WorkloadRow.id.in_(on_server))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(*_ORDER[where.sort], WorkloadRow.created_at.desc(), WorkloadRow.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [workload_record(r) for r in rows], count


#: The leading sort keys of each order; every order ends newest first, then by id.
_ORDER: dict[WorkloadSort, tuple[Any, ...]] = {
    WorkloadSort.NEWEST: (),
    WorkloadSort.OLDEST: (WorkloadRow.created_at.asc(), WorkloadRow.id.asc()),
    WorkloadSort.NAME: (WorkloadRow.name.asc(),),
    WorkloadSort.PRIORITY: (WorkloadRow.priority.desc(),),
    WorkloadSort.STATUS: (WorkloadRow.status.asc(),),
}


def workloads_by_id(
    session: Session, workload_ids: Collection[str], visible: ColumnElement[bool]
) -> dict[str, Workload]:
    """The workloads of ``workload_ids`` that match ``visible``, by id."""
    query = select(WorkloadRow).where(WorkloadRow.id.in_(workload_ids), visible)
    return {r.id: workload_record(r) for r in session.scalars(query)}


def find_events(
    session: Session, workload_id: str, limit: int, offset: int
) -> tuple[list[WorkloadEvent], int]:
    """A workload's events, oldest first, with the total count."""
    base = select(WorkloadEventRow).where(WorkloadEventRow.workload_id == workload_id)
    count = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(WorkloadEventRow.id).limit(limit).offset(offset)).all()
    return [event_record(r) for r in rows], count


def event_record(row: WorkloadEventRow) -> WorkloadEvent:
    """The read model of a workload event row."""
    return WorkloadEvent(
        id=row.id,
        workload_id=row.workload_id,
        at=as_utc(row.at),
        from_status=row.from_status,
        to_status=row.to_status,
        reason=row.reason,
        details=dict(row.details or {}),
    )


def owner_emails(session: Session, user_ids: Iterable[str]) -> dict[str, str]:
    """user id -> email, in one query (workload owners' display names)."""
    query = select(UserRow.id, UserRow.email).where(UserRow.id.in_(list(user_ids)))
    return {user_id: email for user_id, email in session.execute(query)}


def owner_usernames(session: Session, user_ids: Iterable[str]) -> dict[str, str | None]:
    """user id -> username (None when the user chose none), in one query (route paths)."""
    query = select(UserRow.id, UserRow.username).where(UserRow.id.in_(list(user_ids)))
    return {user_id: username for user_id, username in session.execute(query)}


def running_with_ports(session: Session, limit: int) -> list[Workload]:
    """Running workloads that publish ports (per-user routing), oldest first, among the
    first ``limit`` running ones (``ports`` is a JSON list: filtered here, not in SQL,
    to stay free of dialect branches)."""
    query = (
        select(WorkloadRow)
        .where(WorkloadRow.status == WorkloadStatus.RUNNING.value)
        .order_by(WorkloadRow.created_at.asc(), WorkloadRow.id.asc())
        .limit(limit)
    )
    return [w for w in (workload_record(r) for r in session.scalars(query)) if w.ports]


def host_ports(session: Session, allocation_ids: Iterable[str]) -> dict[str, dict[int, int]]:
    """allocation id -> {container_port: host_port}, in one query."""
    p = PortAllocationRow
    query = select(p.allocation_id, p.container_port, p.host_port).where(
        p.allocation_id.in_(list(allocation_ids))
    )
    found: dict[str, dict[int, int]] = defaultdict(dict)
    for allocation_id, container_port, host_port in session.execute(query):
        found[allocation_id][container_port] = host_port
    return dict(found)


# --- what the lifecycle loop changes by time ----------------------------------------------


def requeue_due(session: Session, now: datetime) -> list[tuple[str, int]]:
    """(id, version) of the preempted workloads whose backoff has passed at ``now``."""
    query = select(WorkloadRow.id, WorkloadRow.version).where(
        WorkloadRow.status == WorkloadStatus.PREEMPTED.value,
        WorkloadRow.requeue_at <= now,
    )
    return [(workload_id, version) for workload_id, version in session.execute(query)]


def timed_running(
    session: Session, container_kinds: Collection[str]
) -> Sequence[tuple[str, int, datetime | None, float | None]]:
    """(id, version, started_at, duration_s) of the running workloads with a duration and
    no replica on a server whose cluster is of one of ``container_kinds``."""
    on_containers = (
        select(AllocationRow.workload_id)
        .join(ServerRow, ServerRow.id == AllocationRow.server_id)
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .where(ClusterRow.kind.in_(list(container_kinds)))
    )
    query = select(
        WorkloadRow.id, WorkloadRow.version, WorkloadRow.started_at, WorkloadRow.duration_s
    ).where(
        WorkloadRow.status == WorkloadStatus.RUNNING.value,
        WorkloadRow.duration_s.is_not(None),
        WorkloadRow.id.not_in(on_containers),
    )
    return [(i, v, s, d) for i, v, s, d in session.execute(query)]


def declared_run_times(session: Session) -> dict[str, float]:
    """{id: seconds} of the active workloads that declared how long they run: the shorter
    of their duration and their maximum lifetime (start estimates play these forward)."""
    query = select(WorkloadRow.id, WorkloadRow.duration_s, WorkloadRow.max_lifetime_s).where(
        WorkloadRow.status.in_([s.value for s in ACTIVE]),
        (WorkloadRow.duration_s.is_not(None)) | (WorkloadRow.max_lifetime_s.is_not(None)),
    )
    found: dict[str, float] = {}
    for workload_id, duration, lifetime in session.execute(query):
        declared = [float(v) for v in (duration, lifetime) if v is not None]
        found[workload_id] = min(declared)
    return found


def workload_versions(session: Session, workload_ids: Iterable[str]) -> dict[str, int]:
    """{id: version} of the workloads ``workload_ids`` that exist."""
    query = select(WorkloadRow.id, WorkloadRow.version).where(
        WorkloadRow.id.in_(list(workload_ids))
    )
    return {workload_id: version for workload_id, version in session.execute(query)}


def lock_allocations_of(session: Session, workload_ids: Collection[str]) -> Sequence[Any]:
    """The allocations of ``workload_ids``, locked (FOR UPDATE) for their release, as rows
    of (id, server_id, cpu_milli, ram_mib, storage_mib, gpu_milli, gpu_memory_mib,
    gpu_allocation, container_id)."""
    if not workload_ids:
        return []
    a = AllocationRow
    query = (
        select(
            a.id,
            a.server_id,
            a.cpu_milli,
            a.ram_mib,
            a.storage_mib,
            a.gpu_milli,
            a.gpu_memory_mib,
            a.gpu_allocation,
            a.container_id,
        )
        .where(a.workload_id.in_(list(workload_ids)))
        .with_for_update()
    )
    return session.execute(query).all()


def delete_allocations(session: Session, allocation_ids: Collection[str]) -> None:
    """Delete the allocations ``allocation_ids`` (their reservations already released)."""
    if allocation_ids:
        session.execute(delete(AllocationRow).where(AllocationRow.id.in_(list(allocation_ids))))


def workloads_on_server(
    session: Session, server_id: str, statuses: Collection[str]
) -> Sequence[WorkloadRow]:
    """The workloads in ``statuses`` with a replica on ``server_id``, to change them."""
    # IN, not DISTINCT over a join: PostgreSQL cannot compare the json columns.
    on_server = select(AllocationRow.workload_id).where(AllocationRow.server_id == server_id)
    return session.scalars(
        select(WorkloadRow).where(
            WorkloadRow.id.in_(on_server), WorkloadRow.status.in_(list(statuses))
        )
    ).all()


_INSERT_ALLOCATIONS = insert(cast(Table, AllocationRow.__table__))


def insert_allocations(session: Session, allocations: Sequence[Mapping[str, Any]]) -> None:
    """Insert allocation rows, one Core ``executemany`` on the session's connection (the
    admission batch's hot path: no ORM unit of work)."""
    session.connection().execute(_INSERT_ALLOCATIONS, list(allocations))


def image_and_ports(session: Session, workload_id: str) -> tuple[str, list[int]]:
    """The workload's image and its published container ports."""
    image, ports = session.execute(
        select(WorkloadRow.image, WorkloadRow.ports).where(WorkloadRow.id == workload_id)
    ).one()
    return image, ports


def latest_transitions(
    session: Session, workload_id: str, limit: int
) -> list[tuple[datetime, str, str | None]]:
    """(at, to_status, reason) of the workload's ``limit`` latest events, newest first."""
    e = WorkloadEventRow
    rows = session.scalars(
        select(e).where(e.workload_id == workload_id).order_by(e.id.desc()).limit(limit)
    ).all()
    return [(as_utc(row.at), row.to_status, row.reason) for row in rows]


# --- who holds a server's GPUs ----------------------------------------------------------


def gpu_holdings(
    session: Session, server_id: str, visible: ColumnElement[bool]
) -> list[GpuHolding]:
    """Each replica's share of each GPU of ``server_id``, by device then workload; the
    workload is named only where ``visible`` (the reader's WHERE clause) holds."""
    a, w = AllocationRow, WorkloadRow
    query = (
        select(
            a.workload_id,
            a.replica,
            a.gpu_allocation,
            w.name,
            w.owner_id,
            UserRow.email,
            visible.label("visible"),
        )
        .join(w, w.id == a.workload_id)
        .outerjoin(UserRow, UserRow.id == w.owner_id)
        .where(a.server_id == server_id, a.gpu_milli > 0)
    )
    holdings = []
    for workload_id, replica, pairs, name, owner_id, email, readable in session.execute(query):
        held_by = HeldBy(workload_id, name, owner_id, email) if readable else None
        for index, milli in pairs or ():
            holdings.append(
                GpuHolding(int(index), int(milli), replica if readable else None, held_by)
            )
    holdings.sort(key=_holding_order)
    return holdings


def _holding_order(holding: GpuHolding) -> tuple[int, bool, str, str]:
    held_by = holding.held_by
    named = (held_by.name, held_by.workload_id) if held_by else ("", "")
    return (holding.gpu_index, held_by is None, *named)


# --- the job view (the queue's registries) -----------------------------------------------

#: Ids per ``IN (...)`` list (SQLite caps bound parameters).
_ID_CHUNK = 500


def status_counts(session: Session, visible: ColumnElement[bool]) -> dict[str, int]:
    """{status: how many workloads} among those matching ``visible``."""
    query = select(WorkloadRow.status, func.count()).where(visible).group_by(WorkloadRow.status)
    return {status: int(count) for status, count in session.execute(query)}


def requeue_counts(
    session: Session, workload_ids: Collection[str], from_statuses: Collection[str]
) -> dict[str, int]:
    """{workload id: how many times its events moved it from one of ``from_statuses`` back
    to pending}; ids without any are left out."""
    e = WorkloadEventRow
    counts: dict[str, int] = {}
    ids = list(workload_ids)
    for first in range(0, len(ids), _ID_CHUNK):
        query = (
            select(e.workload_id, func.count())
            .where(
                e.workload_id.in_(ids[first : first + _ID_CHUNK]),
                e.to_status == WorkloadStatus.PENDING.value,
                e.from_status.in_(list(from_statuses)),
            )
            .group_by(e.workload_id)
        )
        counts.update({wid: int(n) for wid, n in session.execute(query)})
    return counts


@dataclass(frozen=True)
class JobRow:
    """What the job view shows of one workload."""

    workload_id: str
    name: str
    status: str
    requeue_at: datetime | None


def job_rows(
    session: Session, visible: ColumnElement[bool], statuses: Collection[str], limit: int
) -> list[JobRow]:
    """Up to ``limit`` workloads matching ``visible`` in ``statuses``, the soonest to come
    back first (those with no time last), then the oldest."""
    w = WorkloadRow
    query = (
        select(w.id, w.name, w.status, w.requeue_at)
        .where(visible, w.status.in_(list(statuses)))
        .order_by(w.requeue_at.is_(None), w.requeue_at, w.created_at, w.id)
        .limit(limit)
    )
    rows = session.execute(query)
    return [JobRow(wid, name, st, as_utc_or_none(at)) for wid, name, st, at in rows]


def job_row(session: Session, workload_id: str) -> JobRow | None:
    w = WorkloadRow
    query = select(w.id, w.name, w.status, w.requeue_at).where(w.id == workload_id)
    found = session.execute(query).first()
    if found is None:
        return None
    wid, name, st, at = found
    return JobRow(wid, name, st, as_utc_or_none(at))
