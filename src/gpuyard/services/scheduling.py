"""The scheduling service: snapshot -> pure engine -> one atomic commit per decision.

A cycle (1) reads a snapshot of servers, reservations and the queue in one short read
transaction, (2) asks the pure engine for decisions, (3) applies each admission in its
own write transaction guarded by compare-and-set updates (workload version, server and
GPU counters), so a decision that went stale because another process moved first fails
cleanly and is retried next cycle, and (4) records pending reasons that changed.

The snapshot comes from a :class:`SnapshotCache` kept per database across cycles, which
re-reads only the rows that changed. A decision that fails its compare-and-set has the rows
it involved re-read next cycle; conflicts that persist cycle after cycle reload everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.scheduler.decisions import Admission, CycleResult, Pending, PendingCode
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import SchedulerConfig
from gpuyard.services.allocations import release_allocation, release_workload
from gpuyard.services.context import ServiceContext
from gpuyard.services.ports import PortsExhausted, allocate_ports, port_range_for
from gpuyard.services.scheduler_lease import holds_scheduler_lease
from gpuyard.services.snapshot_loader import snapshot_cache_of
from gpuyard.services.snapshot_rows import QueueState, WorkloadSeen
from gpuyard.services.workload_transitions import (
    StaleWorkload,
    advance_workload_status,
    bump_workload_version,
    transition_workload,
)
from gpuyard.store.base import new_id
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.reservations import ReservationConflict, reserve_resources
from gpuyard.store.workload_tables import WORKLOADS_TABLE, AllocationRow, WorkloadRow

log = get_logger(__name__)

_INSERT_ALLOCATIONS = insert(cast(Table, AllocationRow.__table__))
#: Admissions applied per write transaction (each in its own savepoint).
APPLY_BATCH = 64
#: What a decision that went stale raises: another decider moved first.
_STALE = (ReservationConflict, StaleWorkload, StaleDataError, IntegrityError)


@dataclass(frozen=True)
class CycleStats:
    considered: int
    admitted: int
    conflicts: int
    preempted: int
    seconds: float


def scheduler_config(ctx: ServiceContext) -> SchedulerConfig:
    s = ctx.settings
    return SchedulerConfig(
        profile=s.scheduler_profile,
        starvation_seconds=s.starvation_seconds,
        min_runtime_seconds=s.min_runtime_seconds,
    )


def plan_cycle(ctx: ServiceContext) -> tuple[QueueState, CycleResult]:
    """Decide without applying: the queue view (GET /queue) uses this too."""
    with ctx.db.read() as session:
        state = snapshot_cache_of(ctx.db).refresh(session)
    result = schedule_cycle(
        state.snapshot, state.pending, scheduler_config(ctx), ctx.now().timestamp()
    )
    return state, result


def run_scheduling_cycle(ctx: ServiceContext) -> CycleStats:
    """One full cycle: plan, apply the admissions, record reasons.

    Admissions without victims are applied in batches: one transaction per batch, each
    decision inside its own savepoint, so a decision that went stale rolls back alone
    while the others commit together. Admissions with victims each get a transaction of
    their own (evictions and the preemptor's reservation commit together)."""
    started = time.perf_counter()
    if not holds_scheduler_lease(ctx):
        return CycleStats(0, 0, 0, 0, time.perf_counter() - started)
    state, result = plan_cycle(ctx)
    admitted = preempted = 0
    stale: list[Admission] = []
    plain = [a for a in result.admitted if not a.victims]
    no_ports: list[Pending] = []
    for first in range(0, len(plain), APPLY_BATCH):
        batch = apply_admission_batch(ctx, plain[first : first + APPLY_BATCH], state)
        admitted += batch.applied
        stale += batch.stale_admissions
        no_ports += batch.no_ports
    for admission in (a for a in result.admitted if a.victims):
        try:
            seen = state.seen[admission.workload_id]
            victims = {v.workload_id: state.seen[v.workload_id].version for v in admission.victims}
            preempted += apply_admission(ctx, admission, seen, state.docker_servers, victims)
            admitted += 1
        except _STALE as exc:
            stale.append(admission)
            log.info("admission_conflict", workload_id=admission.workload_id, error=str(exc))
    record_pending_reasons(ctx, (*result.pending, *no_ports), state)
    conflicts = len(stale)
    snapshot_cache_of(ctx.db).note_conflicts(*_conflicted_rows(stale))
    if conflicts:
        ctx.scheduler_wakeup.notify()  # another decider moved first: look again soon
    if admitted and state.docker_servers:
        ctx.starter_wakeup.notify()  # containers to create for what was just scheduled
    return CycleStats(
        considered=len(state.pending),
        admitted=admitted,
        conflicts=conflicts,
        preempted=preempted,
        seconds=time.perf_counter() - started,
    )


def _conflicted_rows(stale: list[Admission]) -> tuple[set[str], set[str]]:
    """The servers and workloads (preemptors and victims) of decisions that went stale."""
    servers = {a.server_id for adm in stale for a in adm.assignments}
    workloads = {adm.workload_id for adm in stale} | {
        v.workload_id for adm in stale for v in adm.victims
    }
    return servers, workloads


@dataclass
class BatchOutcome:
    applied: int = 0
    #: Decisions another decider made stale: worth deciding again at once.
    stale_admissions: list[Admission] = field(default_factory=list)
    #: Workloads that fit but found their server's host port range full: they wait, with
    #: that as their reason, until the next regular cycle.
    no_ports: list[Pending] = field(default_factory=list)


def apply_admission_batch(
    ctx: ServiceContext, admissions: list[Admission], state: QueueState
) -> BatchOutcome:
    """Apply admissions without victims, each in its own savepoint."""
    now = ctx.now()
    outcome = BatchOutcome()
    with ctx.db.write() as session:
        names = _server_names(session, admissions)
        for admission in admissions:
            try:
                with session.begin_nested():
                    _reserve_and_start(
                        session,
                        admission,
                        state.seen[admission.workload_id],
                        _Placement(names, state.docker_servers, ctx.settings.port_range_table),
                        now,
                    )
                outcome.applied += 1
            except PortsExhausted as exc:
                where = ", ".join(
                    sorted({names.get(a.server_id, a.server_id) for a in admission.assignments})
                )
                reason = f"fits on {where} but {exc}"
                outcome.no_ports.append(
                    Pending(admission.workload_id, PendingCode.UNSCHEDULABLE, reason)
                )
            except _STALE as exc:
                outcome.stale_admissions.append(admission)
                log.info("admission_conflict", workload_id=admission.workload_id, error=str(exc))
    return outcome


def _server_names(session: Session, admissions: list[Admission]) -> dict[str, str]:
    ids = {a.server_id for adm in admissions for a in adm.assignments}
    query = select(ServerRow.id, ServerRow.name).where(ServerRow.id.in_(ids))
    return {server_id: name for server_id, name in session.execute(query)}


@dataclass(frozen=True)
class _Placement:
    """What an apply needs to know about the servers it places on."""

    names: dict[str, str]
    docker_servers: dict[str, tuple[int, int] | None]
    port_ranges: dict[str, tuple[int, int]]


def _reserve_and_start(
    session: Session,
    admission: Admission,
    seen: WorkloadSeen,
    placement: _Placement,
    now: datetime,
) -> None:
    """Reserve every assignment and move the workload on, all or nothing: to running on
    simulated servers; to scheduled (with host ports) on docker servers, where the starter
    loop creates the containers outside this transaction."""
    if not admission.assignments:
        raise ReservationConflict("admission without assignments")
    rows = []
    request = seen.request
    for assignment in admission.assignments:
        reserve_resources(session, assignment.server_id, request, assignment.gpu_allocation)
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
                "gpu_allocation": [[i, m] for i, m in assignment.gpu_allocation],
                "started_at": now,
                "created_at": now,
            }
        )
    session.connection().execute(_INSERT_ALLOCATIONS, rows)
    docker = [r for r in rows if r["server_id"] in placement.docker_servers]
    if docker:
        _allocate_host_ports(session, admission.workload_id, docker, placement)
    if seen.status is not WorkloadStatus.PENDING:
        bump_workload_version(session, admission.workload_id, seen.version)
        return  # more replicas of a running non-gang workload
    names = placement.names
    where = ", ".join(sorted({names.get(a.server_id, a.server_id) for a in admission.assignments}))
    gpus = sorted({i for a in admission.assignments for i, _ in a.gpu_allocation})
    steps = [(WorkloadStatus.SCHEDULED, f"reserved on {where}")]
    if not docker:  # simulated servers start at once
        steps += [
            (WorkloadStatus.STARTING, f"starting on {where}"),
            (WorkloadStatus.RUNNING, f"running on {where}"),
        ]
    advance_workload_status(
        session,
        admission.workload_id,
        seen.version,
        seen.status,
        steps,
        now,
        {"servers": where.split(", "), "gpu_indices": gpus},
    )


def _allocate_host_ports(
    session: Session, workload_id: str, rows: list[dict[str, Any]], placement: _Placement
) -> None:
    """Host ports for the docker replicas of one admission (one query for the workload)."""
    image, ports = session.execute(
        select(WorkloadRow.image, WorkloadRow.ports).where(WorkloadRow.id == workload_id)
    ).one()
    if not ports:
        return
    for row in rows:
        server_id = row["server_id"]
        allocate_ports(
            session,
            server_id=server_id,
            allocation_id=row["id"],
            workload_id=workload_id,
            container_ports=[int(p) for p in ports],
            port_range=port_range_for(
                image, placement.port_ranges, placement.docker_servers[server_id]
            ),
        )


def apply_admission(
    ctx: ServiceContext,
    admission: Admission,
    seen: WorkloadSeen,
    docker_servers: dict[str, tuple[int, int] | None] | None = None,
    victim_versions: dict[str, int] | None = None,
) -> int:
    """Evict the victims and reserve the preemptor's replicas in ONE transaction, so no
    one else can take the freed capacity. A victim changed since the snapshot (a new
    priority, made non-preemptible) voids the decision. Returns how many were preempted."""
    state_versions = victim_versions or {}
    now = ctx.now()
    preempted = 0
    docker_servers = docker_servers or {}
    with ctx.db.write() as session:
        preemptor = _PreemptorName(seen.name, seen.priority, admission.workload_id)
        for victim_id in sorted({v.workload_id for v in admission.victims}):
            replicas = {v.replica for v in admission.victims if v.workload_id == victim_id}
            victim_seen = state_versions.get(victim_id)
            preempted += _evict(ctx, session, victim_id, replicas, preemptor, now, victim_seen)
        session.flush()  # the evictions' releases before the preemptor's reservation
        placement = _Placement(
            _server_names(session, [admission]), docker_servers, ctx.settings.port_range_table
        )
        _reserve_and_start(session, admission, seen, placement, now)
    return preempted


@dataclass(frozen=True)
class _PreemptorName:
    name: str
    priority: int
    id: str


def _evict(
    ctx: ServiceContext,
    session: Session,
    victim_id: str,
    replicas: set[int],
    preemptor: _PreemptorName,
    now: datetime,
    seen_version: int | None,
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
        victim.reason = f"{len(replicas)} replica(s) preempted by {preemptor.name}"
        return 0
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
        f"preempted by {preemptor.name} (priority {preemptor.priority}); re-queued in {backoff:g}s",
        now,
        details={"preemptor_id": preemptor.id, "backoff_s": backoff},
    )
    return 1


def record_pending_reasons(
    ctx: ServiceContext, pending: tuple[Pending, ...], state: QueueState
) -> None:
    """Write reasons that changed, in one statement. No version bump (not a state change),
    but only where the row is still the version the cycle saw."""
    changed = [
        {
            "wid": p.workload_id,
            "seen": state.seen[p.workload_id].version,
            "new_reason": p.reason,
            "new_code": p.code.value,
        }
        for p in pending
        if state.seen[p.workload_id].reason != p.reason
    ]
    if not changed:
        return
    table = WORKLOADS_TABLE
    with ctx.db.write() as session:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("wid"), table.c.version == bindparam("seen"))
            .values(reason=bindparam("new_reason"), reason_code=bindparam("new_code")),
            changed,
        )
