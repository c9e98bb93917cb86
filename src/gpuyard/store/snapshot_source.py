"""What the scheduler's snapshot reads, and the change marks it reads by.

The services' snapshot cache (``services/scheduling/snapshot_loader.py``) keeps the
fleet and the schedulable workloads between cycles and asks this module, in one read
transaction per refresh, for the rows it lacks: all of them on a full load, or only those
whose ``change_mark`` (set by the triggers of migration 0005) is at or above a watermark,
plus rows it names for a recheck. Rows come back as SQLAlchemy ``Row`` tuples of the
columns below, never ORM objects: tens of thousands of ORM objects would dominate a full
load. Every dialect difference of that reading (the watermark above all) stays here.

Rows that cannot be read are isolated by the reader the caller hands to
:class:`SnapshotSource` (``services.loops.item_failures.read_isolating``): which errors
blame a row is the services' policy, not the store's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select, func, or_, select, text
from sqlalchemy.orm import QueryableAttribute, Session

from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus
from gpuyard.store.fleet_tables import ChangeClockRow, ClusterRow, ServerGpuRow, ServerRow
from gpuyard.store.identity_tables import TeamRow, UserRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

_Ts = TypeVarTuple("_Ts")


class RowReader(Protocol):
    """Reads ``query``: its rows, and the keys (values of ``key``) whose rows could not be
    read."""

    def __call__(
        self,
        session: Session,
        query: Select[*_Ts],
        key: QueryableAttribute[Any] | ColumnElement[Any],
        /,
    ) -> tuple[Sequence[Row[*_Ts]], dict[Any, Exception]]: ...


#: Statuses of the workloads the snapshot holds: those holding resources, and the queue.
SCHEDULABLE = frozenset(s.value for s in HOLDS_RESOURCES) | {WorkloadStatus.PENDING.value}
#: Ids per ``IN (...)`` list (SQLite caps bound parameters per statement).
_IN_CHUNK = 500

_s, _g, _w, _a = ServerRow, ServerGpuRow, WorkloadRow, AllocationRow
_SCHEDULABLE = sorted(SCHEDULABLE)  # a list for IN, in a stable order

#: What the snapshot reads of each table (``services/scheduling/snapshot_rows.py``
#: turns these columns into the scheduler's types).
SERVER_COLUMNS = (
    _s.id,
    _s.name,
    _s.cluster_id,
    _s.status,
    _s.labels,
    _s.cpu_milli,
    _s.ram_mib,
    _s.storage_mib,
    _s.gpu_milli,
    _s.alloc_cpu_milli,
    _s.alloc_ram_mib,
    _s.alloc_storage_mib,
    _s.alloc_gpu_milli,
    _s.host_port_min,
    _s.host_port_max,
)
GPU_COLUMNS = (
    _g.server_id,
    _g.gpu_index,
    _g.model,
    _g.memory_mib,
    _g.allocated_milli,
    _g.allocated_memory_mib,
)
WORKLOAD_COLUMNS = (
    _w.id,
    _w.name,
    _w.status,
    _w.reason,
    _w.version,
    _w.priority,
    _w.preemptible,
    _w.team_id,
    _w.owner_id,
    _w.cluster_id,
    _w.gpu_model,
    _w.node_selector,
    _w.replicas,
    _w.gang,
    _w.cpu_milli,
    _w.ram_mib,
    _w.storage_mib,
    _w.gpu_milli,
    _w.gpu_memory_mib,
    _w.created_at,
    _w.pending_since,
)
ALLOCATION_COLUMNS = (
    _a.workload_id,
    _a.replica,
    _a.server_id,
    _a.cpu_milli,
    _a.ram_mib,
    _a.storage_mib,
    _a.gpu_milli,
    _a.gpu_memory_mib,
    _a.gpu_allocation,
    _a.started_at,
)

#: (highest server mark, highest workload mark, pending workloads): see change_fingerprint.
Fingerprint = tuple[int | None, int | None, int]

_FINGERPRINT = select(
    select(func.max(_s.change_mark)).scalar_subquery(),
    select(func.max(_w.change_mark)).scalar_subquery(),
    select(func.count())
    .select_from(_w)
    .where(_w.status == WorkloadStatus.PENDING.value)
    .scalar_subquery(),
)


@dataclass
class ServerRows:
    """Server rows (:data:`SERVER_COLUMNS`) and their GPUs (:data:`GPU_COLUMNS`, sorted by
    server and index); ``unusable``: ids of servers whose row or a GPU could not be read."""

    servers: Sequence[Row[*tuple[Any, ...]]] = ()
    gpus: Sequence[Row[*tuple[Any, ...]]] = ()
    unusable: dict[str, Exception] = field(default_factory=dict)


@dataclass
class WorkloadRows:
    """Workload rows (:data:`WORKLOAD_COLUMNS`), the allocations (:data:`ALLOCATION_COLUMNS`)
    of the schedulable ones by workload id, and the ids of workloads whose row or an
    allocation could not be read."""

    workloads: Sequence[Row[*tuple[Any, ...]]] = ()
    allocations: dict[str, list[Row[*tuple[Any, ...]]]] = field(default_factory=dict)
    unreadable: dict[str, Exception] = field(default_factory=dict)


def begin_snapshot(session: Session) -> int:
    """Start the refresh's read snapshot; return the lowest change mark it may miss.

    PostgreSQL: REPEATABLE READ, so every statement of the refresh sees one snapshot;
    any change it does not see was made by a transaction that is in progress or starts
    later, whose id (the mark) is at least the snapshot's xmin. SQLite: reads are
    snapshots already and writers are serialised, so every later change gets a
    ``change_clock`` value above the one read here."""
    if session.get_bind().dialect.name == "postgresql":
        # (A session already in a transaction keeps its own level: READ COMMITTED sees
        # newer data in later statements, which only makes the watermark conservative.)
        repeatable = {"isolation_level": "REPEATABLE READ"}
        conn = session.connection(
            execution_options=None if session.in_transaction() else repeatable
        )
        query = text("SELECT txid_snapshot_xmin(txid_current_snapshot())")
        return int(conn.execute(query).scalar_one())
    clock = session.scalar(select(ChangeClockRow.value).where(ChangeClockRow.id == 1))
    return int(clock or 0) + 1


def change_fingerprint(session: Session) -> Fingerprint:
    """A cheap fingerprint of what the scheduler reads: the highest change mark of servers
    and of workloads (indexed) and the number of pending workloads."""
    servers, workloads, pending = session.execute(_FINGERPRINT).one()
    return servers, workloads, int(pending)


class SnapshotSource:
    """Reads the snapshot's rows with ``read`` (which isolates rows that cannot be read)."""

    def __init__(self, read: RowReader) -> None:
        self._read = read

    def servers(self, session: Session, since: int | None, recheck: set[str]) -> ServerRows:
        """Servers marked at or after ``since`` (all when None) or listed in ``recheck``,
        with their GPUs."""
        read = self._read
        if since is None:
            servers, unusable = read(session, select(*SERVER_COLUMNS), _s.id)
            gpus, bad_gpus = read(
                session, select(*GPU_COLUMNS).order_by(_g.server_id, _g.gpu_index), _g.server_id
            )
            unusable.update(bad_gpus)
            return ServerRows(servers, gpus, unusable)
        query = select(*SERVER_COLUMNS).where(_changed(_s.change_mark, _s.id, since, recheck))
        servers, unusable = read(session, query, _s.id)
        if not servers and not unusable:
            return ServerRows()
        # By id lists rather than a join on the mark: without statistics SQLite would
        # walk every GPU row in key order to spare itself a sort.
        gpu_rows: list[Row[*tuple[Any, ...]]] = []
        for ids in _chunks([row.id for row in servers]):
            rows, bad_gpus = read(
                session, select(*GPU_COLUMNS).where(_g.server_id.in_(ids)), _g.server_id
            )
            gpu_rows += rows
            unusable.update(bad_gpus)
        gpu_rows.sort()
        return ServerRows(servers, gpu_rows, unusable)

    def workloads(self, session: Session, since: int | None, recheck: set[str]) -> WorkloadRows:
        """Schedulable workloads (all when ``since`` is None) or every workload marked since
        then or listed in ``recheck``, whatever its status (one that finished must leave
        the cache), with the allocations of the schedulable ones."""
        read = self._read
        schedulable = _w.status.in_(_SCHEDULABLE)
        if since is None:
            query = select(*WORKLOAD_COLUMNS).where(schedulable)
            alloc_queries = [
                select(*ALLOCATION_COLUMNS).join(_w, _w.id == _a.workload_id).where(schedulable)
            ]
        else:
            changed = _changed(_w.change_mark, _w.id, since, recheck)
            query = select(*WORKLOAD_COLUMNS).where(changed)
        rows, unreadable = read(session, query, _w.id)
        if since is not None:
            if not rows and not unreadable:
                return WorkloadRows()
            # By id lists: SQLite, without statistics, would rather walk the status index.
            alloc_queries = [
                select(*ALLOCATION_COLUMNS).where(_a.workload_id.in_(ids))
                for ids in _chunks([row.id for row in rows if row.status in SCHEDULABLE])
            ]
        allocations: dict[str, list[Row[*tuple[Any, ...]]]] = defaultdict(list)
        for alloc_query in alloc_queries:
            allocs, bad_allocs = read(session, alloc_query, _a.workload_id)
            unreadable.update(bad_allocs)
            for alloc in allocs:
                allocations[alloc.workload_id].append(alloc)
        return WorkloadRows(rows, allocations, unreadable)

    def statuses(self, session: Session, workload_ids: list[str]) -> dict[str, str]:
        """The status of each workload whose status column can be read."""
        rows, _unreadable = self._read(
            session, select(_w.id, _w.status).where(_w.id.in_(workload_ids)), _w.id
        )
        return {workload_id: status for workload_id, status in rows}


def server_ids_unless(session: Session, count: int) -> set[str] | None:
    """Every server's id, or None when there are ``count`` servers (deleted rows carry no
    mark: a cache that holds ``count`` of them lost none)."""
    if session.scalar(select(func.count()).select_from(_s)) == count:
        return None
    return set(session.scalars(select(_s.id)))


def schedulable_ids_unless(session: Session, count: int) -> set[str] | None:
    """Every schedulable workload's id, or None when there are ``count`` of them."""
    schedulable = _w.status.in_(_SCHEDULABLE)
    if session.scalar(select(func.count()).select_from(_w).where(schedulable)) == count:
        return None
    return set(session.scalars(select(_w.id).where(schedulable)))


def clusters_of_kinds(session: Session, kinds: Collection[str]) -> set[str]:
    """The ids of the clusters whose kind is one of ``kinds``."""
    if not kinds:
        return set()
    return set(session.scalars(select(ClusterRow.id).where(ClusterRow.kind.in_(list(kinds)))))


def admin_user_ids(session: Session) -> set[str]:
    """The ids of the admins (exempt from the quota of users in no team)."""
    return set(session.scalars(select(UserRow.id).where(UserRow.role == "admin")))


def team_quota_rows(
    session: Session,
) -> list[tuple[str, int | None, int | None, int | None]]:
    """(team id, cpu milli, ram MiB, gpu milli) of every team with a quota."""
    t = TeamRow
    rows = session.execute(
        select(t.id, t.quota_cpu_milli, t.quota_ram_mib, t.quota_gpu_milli).where(
            t.quota_cpu_milli.is_not(None)
            | t.quota_ram_mib.is_not(None)
            | t.quota_gpu_milli.is_not(None)
        )
    )
    return [(team_id, cpu, ram, gpu) for team_id, cpu, ram, gpu in rows]


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for first in range(0, len(ids), _IN_CHUNK):
        yield ids[first : first + _IN_CHUNK]


def _changed(mark: Any, key: Any, since: int, recheck: set[str]) -> ColumnElement[bool]:
    """Rows marked at or after ``since``, or listed in ``recheck``."""
    condition: ColumnElement[bool] = mark >= since
    for ids in _chunks(sorted(recheck)):
        condition = or_(condition, key.in_(ids))
    return condition
