"""The containers repository: allocations whose containers are to be started or reconciled,
the containers waiting for teardown, and host port allocations.

Functions take the caller's Session and never commit. Rows that cannot be read are
isolated by the reader the caller hands in (``services.loops.item_failures.read_isolating``),
as for :class:`gpuyard.store.snapshot_source.SnapshotSource`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.store.fleet_tables import ClusterRow, ServerRow
from gpuyard.store.runtime_tables import ContainerTeardownRow, PortAllocationRow
from gpuyard.store.snapshot_source import RowReader
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

_t, _p = ContainerTeardownRow, PortAllocationRow


# --- allocations and their containers ---------------------------------------------------


def allocations_without_container(
    session: Session, server_ids: Iterable[str], statuses: Collection[str], limit: int
) -> Sequence[AllocationRow]:
    """Up to ``limit`` allocations on ``server_ids`` with no container yet, of workloads in
    ``statuses``."""
    return session.scalars(
        select(AllocationRow)
        .join(WorkloadRow, WorkloadRow.id == AllocationRow.workload_id)
        .where(
            AllocationRow.server_id.in_(list(server_ids)),
            AllocationRow.container_id.is_(None),
            WorkloadRow.status.in_(list(statuses)),
        )
        .limit(limit)
    ).all()


def allocations_on(
    session: Session, server_id: str, statuses: Collection[str]
) -> Sequence[AllocationRow]:
    """The allocations on ``server_id`` of workloads in ``statuses``."""
    return session.scalars(
        select(AllocationRow)
        .join(WorkloadRow, WorkloadRow.id == AllocationRow.workload_id)
        .where(AllocationRow.server_id == server_id, WorkloadRow.status.in_(list(statuses)))
    ).all()


def replicas_elsewhere(
    session: Session, workload_ids: Collection[str], server_id: str
) -> dict[str, list[tuple[int, str | None, str]]]:
    """{workload id: [(replica, container handle or None, cluster kind)]} of these
    workloads' allocations on servers other than ``server_id`` (a workload whose
    replicas span servers); workloads with none there are left out."""
    if not workload_ids:
        return {}
    rows = session.execute(
        select(AllocationRow.workload_id, AllocationRow.replica, AllocationRow.container_id)
        .add_columns(ClusterRow.kind)
        .join(ServerRow, ServerRow.id == AllocationRow.server_id)
        .join(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .where(
            AllocationRow.workload_id.in_(list(workload_ids)),
            AllocationRow.server_id != server_id,
        )
        .order_by(AllocationRow.workload_id, AllocationRow.replica)
    ).all()
    found: dict[str, list[tuple[int, str | None, str]]] = {}
    for workload_id, replica, handle, kind in rows:
        found.setdefault(workload_id, []).append((replica, handle, kind))
    return found


def workloads_allocated_on(session: Session, server_id: str) -> set[str]:
    """The ids of the workloads holding an allocation on ``server_id``, whatever their
    status (what a host cleanup must leave alone there)."""
    query = select(AllocationRow.workload_id).where(AllocationRow.server_id == server_id)
    return set(session.scalars(query.distinct()))


def set_container(session: Session, allocation_id: str, expected: str | None, handle: str) -> bool:
    """Record ``handle`` on the allocation if its container is still ``expected`` (None: it
    has none); whether it was recorded."""
    a = AllocationRow
    guard = a.container_id.is_(None) if expected is None else (a.container_id == expected)
    result = session.execute(
        update(a).where(a.id == allocation_id, guard).values(container_id=handle)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# --- teardowns ----------------------------------------------------------------------------


def teardown_pairs(session: Session) -> set[tuple[str, str]]:
    """(server_id, workload_id) of every container waiting for teardown."""
    query = select(_t.server_id, _t.workload_id)
    return {(server_id, workload_id) for server_id, workload_id in session.execute(query)}


def teardown_handles(session: Session, server_id: str) -> set[str]:
    """The handles of the containers on ``server_id`` waiting for teardown."""
    return set(session.scalars(select(_t.handle).where(_t.server_id == server_id)))


def due_teardowns(
    session: Session, now: datetime, limit: int, reader: RowReader
) -> tuple[Sequence[Any], dict[Any, Exception]]:
    """Up to ``limit`` teardowns due at ``now``, earliest first, as rows of (id, handle,
    grace_s, attempts, kind: the cluster kind of the server, None when it is gone); and the
    ids of those ``reader`` could not read."""
    query = (
        select(_t.id, _t.handle, _t.grace_s, _t.attempts, ClusterRow.kind)
        .outerjoin(ServerRow, ServerRow.id == _t.server_id)
        .outerjoin(ClusterRow, ClusterRow.id == ServerRow.cluster_id)
        .where(_t.next_attempt_at <= now)
        .order_by(_t.next_attempt_at)
        .limit(limit)
    )
    return reader(session, query, _t.id)


def postpone_teardowns(session: Session, teardown_ids: Iterable[str], until: datetime) -> None:
    """Try the teardowns ``teardown_ids`` again at ``until``."""
    session.execute(update(_t).where(_t.id.in_(list(teardown_ids))).values(next_attempt_at=until))


def forget_teardown(session: Session, teardown_id: str) -> None:
    """The container is gone: the teardown is done."""
    session.execute(delete(_t).where(_t.id == teardown_id))


def retry_teardown(
    session: Session, teardown_id: str, attempts: int, last_error: str, at: datetime
) -> None:
    """The teardown failed: record its ``attempts`` and error, and try again ``at``."""
    session.execute(
        update(_t)
        .where(_t.id == teardown_id)
        .values(attempts=attempts, last_error=last_error, next_attempt_at=at)
    )


# --- host ports ---------------------------------------------------------------------------


def taken_host_ports(session: Session, server_id: str, first: int, last: int) -> set[int]:
    """The host ports from ``first`` to ``last`` already taken on ``server_id``."""
    return set(
        session.scalars(
            select(_p.host_port).where(_p.server_id == server_id, _p.host_port.between(first, last))
        )
    )


def take_host_port(
    session: Session,
    *,
    server_id: str,
    host_port: int,
    allocation_id: str,
    workload_id: str,
    container_port: int,
) -> bool:
    """Insert the port allocation in a savepoint; False when UNIQUE(server_id, host_port)
    says someone else took that port first."""
    row = {
        "server_id": server_id,
        "host_port": host_port,
        "allocation_id": allocation_id,
        "workload_id": workload_id,
        "container_port": container_port,
    }
    try:
        with session.begin_nested():
            session.execute(insert(_p), [row])
    except IntegrityError:
        return False
    return True
