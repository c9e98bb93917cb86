"""Applying the engine's admissions: reserve the room, record the allocations, move the
workload on, all guarded by compare-and-set updates so a decision another decider made
stale fails cleanly and changes nothing.

Admissions without victims are applied in batches, one transaction per batch. The batch is
first tried in one savepoint with one statement per table (``executemany``: psycopg
pipelines each into one round trip, where one savepoint per admission costs about ten).
If any row of it fails its check, that savepoint rolls back and the batch is applied again
one admission per savepoint, so a stale decision rolls back alone while the others commit;
so does one that fails on the workload's own data (``BatchOutcome.failed``: the scheduling
service fails it with a reason).
An admission with victims gets a transaction of its own: its evictions and its reservation
commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.pools import PoolState
from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.scheduler.decisions import Admission, Pending, PendingCode
from gpuyard.scheduler.preemption import reclaim_reason
from gpuyard.services.batches import write_each, write_together
from gpuyard.services.containers.ports import PortsExhausted, allocate_ports, port_range_for
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import blames_item
from gpuyard.services.loops.leases import LeaseFence, check_fences
from gpuyard.services.scheduling.allocations import release_allocation, release_workload
from gpuyard.services.scheduling.snapshot_rows import QueueState, WorkloadSeen
from gpuyard.services.workloads.transitions import (
    StaleWorkload,
    StatusAdvances,
    transition_workload,
)
from gpuyard.store import fleet
from gpuyard.store import pools as pool_store
from gpuyard.store import workloads as workload_store
from gpuyard.store.base import new_id
from gpuyard.store.database import lost_lock_race
from gpuyard.store.reservations import ReservationBatch, ReservationConflict, reserve_batch
from gpuyard.store.teams import team_names
from gpuyard.store.workload_tables import WorkloadRow

log = get_logger(__name__)

#: What applying a decision may raise when another writer moved first; which of them
#: really mean that, :func:`went_stale` tells.
MAYBE_STALE = (ReservationConflict, StaleWorkload, StaleDataError, DBAPIError)


@dataclass
class BatchOutcome:
    applied: int = 0
    #: Decisions another decider made stale: worth deciding again at once.
    stale_admissions: list[Admission] = field(default_factory=list)
    #: Workloads that fit but found their server's host port range full: they wait, with
    #: that as their reason, until the next regular cycle.
    no_ports: list[Pending] = field(default_factory=list)
    #: Decisions whose apply failed on the workload's own data (not a race): the
    #: scheduling service fails those workloads; their batch mates commit.
    failed: list[tuple[Admission, Exception]] = field(default_factory=list)


@dataclass(frozen=True)
class _TargetServers:
    """What an apply needs to know about the servers it places on."""

    names: dict[str, str]
    docker_servers: dict[str, tuple[int, int] | None]
    port_ranges: dict[str, tuple[int, int]]


@dataclass
class _AdmissionWrites:
    """The rows that admissions write, gathered so they go out one statement per table."""

    reservations: ReservationBatch = field(default_factory=ReservationBatch)
    allocations: list[dict[str, Any]] = field(default_factory=list)
    workloads: StatusAdvances = field(default_factory=StatusAdvances)

    def add(
        self, admission: Admission, seen: WorkloadSeen, targets: _TargetServers, now: datetime
    ) -> list[dict[str, Any]]:
        """Gather what ``admission`` writes; its allocation rows on docker servers (they
        need host ports) are returned."""
        if not admission.assignments:
            raise ReservationConflict("admission without assignments")
        request = seen.request
        rows = []
        for assignment in admission.assignments:
            self.reservations.add(assignment.server_id, request, assignment.gpu_allocation)
            rows.append(
                {
                    "id": new_id(),
                    "workload_id": admission.workload_id,
                    "replica": assignment.replica,
                    "server_id": assignment.server_id,
                    "cpu_milli": request.cpu_milli,
                    "ram_mib": request.ram_mib,
                    "storage_mib": request.storage_mib,
                    "gpu_milli": request.gpu_milli,
                    "gpu_memory_mib": request.gpu_memory_mib,
                    "gpu_allocation": [[i, m] for i, m in assignment.gpu_allocation],
                    "started_at": now,
                    "created_at": now,
                }
            )
        self.allocations += rows
        docker = [r for r in rows if r["server_id"] in targets.docker_servers]
        if seen.status is not WorkloadStatus.PENDING:
            self.workloads.claim(admission.workload_id, seen.version)  # more replicas
            return docker
        names = targets.names
        servers = sorted({names.get(a.server_id, a.server_id) for a in admission.assignments})
        where = ", ".join(servers)
        steps = [(WorkloadStatus.SCHEDULED, f"reserved on {where}")]
        if not docker:  # simulated servers start at once
            steps += [
                (WorkloadStatus.STARTING, f"starting on {where}"),
                (WorkloadStatus.RUNNING, f"running on {where}"),
            ]
        gpus = sorted({i for a in admission.assignments for i, _ in a.gpu_allocation})
        details = {"servers": servers, "gpu_indices": gpus}
        self.workloads.add(admission.workload_id, seen.version, seen.status, steps, now, details)
        return docker

    def write(self, session: Session) -> None:
        reserve_batch(session, self.reservations)
        workload_store.insert_allocations(session, self.allocations)
        self.workloads.write(session)


def apply_admission_batch(
    ctx: ServiceContext,
    admissions: list[Admission],
    state: QueueState,
    fences: Sequence[LeaseFence | None] = (),
) -> BatchOutcome:
    """Apply admissions without victims in one transaction: together if they all still
    hold, else each in its own savepoint. ``fences``: the scheduler leases this cycle
    decided under; if one moved on, nothing is written (:class:`Fenced`)."""
    now = ctx.now()
    outcome = BatchOutcome()
    with ctx.db.write() as session:
        check_fences(session, fences)
        names = _server_names(session, admissions)
        targets = _TargetServers(names, state.docker_servers, ctx.settings.port_range_table)
        # Admissions onto docker servers allocate host ports per row: one by one.
        together: list[Admission] = []
        alone: list[Admission] = []
        for admission in admissions:
            on_docker = any(a.server_id in state.docker_servers for a in admission.assignments)
            (alone if on_docker else together).append(admission)
        if len(together) > 1 and _apply_together(session, together, state, targets, now):
            outcome.applied += len(together)
        else:
            alone = admissions

        def apply_alone(admission: Admission) -> None:
            seen = state.seen[admission.workload_id]
            _reserve_and_start(session, admission, seen, targets, now)

        def failed_alone(admission: Admission, exc: Exception) -> None:
            if isinstance(exc, PortsExhausted):
                where = ", ".join(
                    sorted({names.get(a.server_id, a.server_id) for a in admission.assignments})
                )
                reason = f"fits on {where} but {exc}"
                outcome.no_ports.append(
                    Pending(admission.workload_id, PendingCode.UNSCHEDULABLE, reason)
                )
            elif isinstance(exc, MAYBE_STALE) and went_stale(exc):
                outcome.stale_admissions.append(admission)
                log.info("admission_conflict", workload_id=admission.workload_id, error=str(exc))
            elif blames_item(exc):
                outcome.failed.append((admission, exc))
            else:
                raise exc

        outcome.applied += len(write_each(session, alone, apply_alone, failed_alone))
    return outcome


def went_stale(exc: Exception) -> bool:
    """Whether ``exc`` means another writer moved first, so the decision is dropped and
    made again: a compare-and-set or a CHECK guard refused it, or PostgreSQL broke a lock
    race (a deadlock with the lifecycle tick, say). Any other database error is real."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, IntegrityError) or lost_lock_race(exc)
    return True


def _apply_together(
    session: Session,
    admissions: list[Admission],
    state: QueueState,
    targets: _TargetServers,
    now: datetime,
) -> bool:
    """Apply all of ``admissions`` in one savepoint; False (and nothing written) if any of
    them went stale or one of them is bad (then each goes alone)."""
    writes = _AdmissionWrites()

    def write_all() -> None:
        for admission in admissions:
            writes.add(admission, state.seen[admission.workload_id], targets, now)
        writes.write(session)

    return write_together(session, write_all, _retry_alone, "admission")


def _retry_alone(exc: Exception) -> bool:
    """Stale, or one bad admission: worth applying one by one, each alone."""
    return (isinstance(exc, MAYBE_STALE) and went_stale(exc)) or blames_item(exc)


def _server_names(session: Session, admissions: list[Admission]) -> dict[str, str]:
    return fleet.server_names(session, {a.server_id for adm in admissions for a in adm.assignments})


def _reserve_and_start(
    session: Session,
    admission: Admission,
    seen: WorkloadSeen,
    targets: _TargetServers,
    now: datetime,
) -> None:
    """Reserve every assignment and move the workload on, all or nothing: to running on
    simulated servers; to scheduled (with host ports) on docker servers, where the starter
    loop creates the containers outside this transaction."""
    writes = _AdmissionWrites()
    docker = writes.add(admission, seen, targets, now)
    writes.write(session)
    if docker:
        _allocate_host_ports(session, admission.workload_id, docker, targets)


def _allocate_host_ports(
    session: Session, workload_id: str, rows: list[dict[str, Any]], targets: _TargetServers
) -> None:
    """Host ports for the docker replicas of one admission (one query for the workload)."""
    image, ports = workload_store.image_and_ports(session, workload_id)
    if not ports:
        return
    # A warm pool container's host ports come from its pool's own range.
    pool_range = pool_store.pool_port_range(session, workload_id)
    for row in rows:
        server_id = row["server_id"]
        allocate_ports(
            session,
            server_id=server_id,
            allocation_id=row["id"],
            workload_id=workload_id,
            container_ports=[int(p) for p in ports],
            port_range=pool_range
            or port_range_for(image, targets.port_ranges, targets.docker_servers[server_id]),
        )


def apply_admission(
    ctx: ServiceContext,
    admission: Admission,
    seen: WorkloadSeen,
    docker_servers: dict[str, tuple[int, int] | None] | None = None,
    victim_versions: dict[str, int] | None = None,
    fences: Sequence[LeaseFence | None] = (),
) -> int:
    """Evict the victims and reserve the preemptor's replicas in ONE transaction, so no
    one else can take the freed capacity. A victim changed since the snapshot (a new
    priority, made non-preemptible) voids the decision. Returns how many were preempted.
    ``fences`` as for :func:`apply_admission_batch`."""
    state_versions = victim_versions or {}
    now = ctx.now()
    preempted = 0
    docker_servers = docker_servers or {}
    with ctx.db.write() as session:
        check_fences(session, fences)
        reclaim = _reclaim_note(session, admission)
        for victim_id in sorted({v.workload_id for v in admission.victims}):
            replicas = {v.replica for v in admission.victims if v.workload_id == victim_id}
            victim_seen = state_versions.get(victim_id)
            preempted += _evict(
                ctx,
                session,
                victim_id,
                replicas,
                seen,
                admission.workload_id,
                now,
                victim_seen,
                reclaim,
            )
        session.flush()  # the evictions' releases before the preemptor's reservation
        targets = _TargetServers(
            _server_names(session, [admission]), docker_servers, ctx.settings.port_range_table
        )
        _reserve_and_start(session, admission, seen, targets, now)
    return preempted


def _reclaim_note(session: Session, admission: Admission) -> str:
    """ "; reclaimed for team X ... from Y ..." with team names, for a reclaim; else ""."""
    if admission.lender is None:
        return ""
    names = team_names(session, [admission.lender, *admission.borrowers])
    borrowers = [names.get(b, b) for b in admission.borrowers]
    return "; " + reclaim_reason(names.get(admission.lender, admission.lender), borrowers)


def _evict(
    ctx: ServiceContext,
    session: Session,
    victim_id: str,
    replicas: set[int],
    preemptor: WorkloadSeen,
    preemptor_id: str,
    now: datetime,
    seen_version: int | None,
    reclaim: str = "",
) -> int:
    victim = session.get(WorkloadRow, victim_id, populate_existing=True)
    if victim is None or victim.status not in {s.value for s in HOLDS_RESOURCES}:
        raise ReservationConflict(f"victim {victim_id} is no longer running")
    if seen_version is not None and victim.version != seen_version:
        raise ReservationConflict(f"victim {victim_id} changed since the snapshot")
    if victim.gang:
        release_workload(session, victim)
    else:
        for allocation in [a for a in victim.allocations if a.replica in replicas]:
            release_allocation(session, victim, allocation)
    if victim.allocations:
        victim.reason = f"{len(replicas)} replica(s) preempted by {preemptor.name}{reclaim}"
        return 0
    if victim.pool_state == PoolState.AVAILABLE.value:
        _retire_warm(session, victim, preemptor, preemptor_id, now)
        return 1
    backoff = min(
        ctx.settings.preemption_backoff_initial_s * (2**victim.preemption_count),
        ctx.settings.preemption_backoff_max_s,
    )
    victim.preemption_count += 1
    victim.requeue_at = now + timedelta(seconds=backoff)
    transition_workload(
        session,
        victim,
        WorkloadStatus.PREEMPTED,
        f"preempted by {preemptor.name} (priority {preemptor.priority}){reclaim}; "
        f"re-queued in {backoff:g}s",
        now,
        details={"preemptor_id": preemptor_id, "backoff_s": backoff, "reclaim": bool(reclaim)},
    )
    return 1


def _retire_warm(
    session: Session,
    victim: WorkloadRow,
    preemptor: WorkloadSeen,
    preemptor_id: str,
    now: datetime,
) -> None:
    """An available warm container preempted: it is no one's work, so it is not re-queued
    (it ends stopped); the pool loop refills its pool when capacity allows."""
    transition_workload(
        session,
        victim,
        WorkloadStatus.PREEMPTED,
        f"warm pool container preempted by {preemptor.name} (priority {preemptor.priority})",
        now,
        details={"preemptor_id": preemptor_id, "pool_id": victim.pool_id},
    )
    transition_workload(
        session,
        victim,
        WorkloadStatus.STOPPED,
        "warm pool container: not re-queued; its pool refills when capacity allows",
        now,
    )
