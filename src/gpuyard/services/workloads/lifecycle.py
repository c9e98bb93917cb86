"""Time-driven workload changes: preempted work returns to the queue after its backoff;
simulated workloads with a duration succeed when it has passed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.batches import write_each, write_together
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import (
    blames_item,
    fail_workload,
    failure_reason,
    report_item_failure,
)
from gpuyard.services.loops.leases import holds_scheduler_lease
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.workloads.transitions import (
    StaleWorkload,
    StatusAdvances,
    transition_workload,
)
from gpuyard.store import workloads as workload_store
from gpuyard.store.base import as_utc
from gpuyard.store.conversions import allocation_resources
from gpuyard.store.reservations import ReservationBatch, release_batch
from gpuyard.store.workload_tables import WorkloadRow

log = get_logger(__name__)


#: Workloads changed per write transaction.
LIFECYCLE_BATCH = 64
_LOOP = "lifecycle"


@dataclass(frozen=True)
class _Due:
    workload_id: str
    version: int
    seen: WorkloadStatus  # preempted (to requeue) or running (to finish)
    duration_s: float | None = None


def advance_lifecycles(ctx: ServiceContext) -> int:
    """One tick; returns how many workloads changed status.

    Up to :data:`LIFECYCLE_BATCH` workloads change per write transaction: together, with
    one statement per table, when every one is still as the tick read it; otherwise each
    in its own savepoint. Every status change is checked against the version the tick
    read, in the same savepoint as the release of its reservations, so when several
    processes run this loop the second to reach a workload fails on the version and
    releases nothing twice. One workload that fails (that race, or a deadlock with the
    scheduler's apply) rolls back alone and is retried next tick; the others commit. One
    whose own data makes it fail (a duration_s no datetime can reach, a row that cannot
    be read) is logged once and failed with a reason (``services/loops/item_failures.py``).

    Where a lease elects the scheduler (PostgreSQL), only its holder ticks: two ticks
    would race for the same workloads, and on PostgreSQL the loser waits on the winner's
    row locks before its version checks fail."""
    if not holds_scheduler_lease(ctx):
        return 0
    now = ctx.now()
    with ctx.db.read() as session:
        due = [
            _Due(workload_id, version, WorkloadStatus.PREEMPTED)
            for workload_id, version in workload_store.requeue_due(session, now)
        ]
        # duration_s is virtual time for instant runtimes only: a workload with any
        # replica on a server that runs containers runs for as long as its container does.
        timed = workload_store.timed_running(session, ctx.runtimes.kinds_where(runs_containers))
    untimeable: list[tuple[str, Exception]] = []
    for workload_id, version, started_at, duration_s in timed:
        if started_at is None or duration_s is None:
            continue
        try:
            ends = as_utc(started_at) + timedelta(seconds=duration_s)
        except Exception as exc:  # 1e300 s or NaN: no datetime that far; fail it, go on
            untimeable.append((workload_id, exc))
            continue
        if ends <= now:
            due.append(_Due(workload_id, version, WorkloadStatus.RUNNING, duration_s))
    changed = sum(
        _change_batch(ctx, due[first : first + LIFECYCLE_BATCH], now)
        for first in range(0, len(due), LIFECYCLE_BATCH)
    )
    for workload_id, error in untimeable:
        report_item_failure(_LOOP, workload_id, error, "duration_s cannot be timed")
        reason = failure_reason("its duration_s is out of range, so it could never finish", error)
        changed += fail_workload(
            ctx, workload_id, reason, loop=_LOOP, expect={WorkloadStatus.RUNNING}
        )
    if changed:
        ctx.scheduler_wakeup.notify()
    return changed


class _OneByOne(Exception):
    """The batch cannot go together (a workload has a container to tear down)."""


def _change_batch(ctx: ServiceContext, batch: list[_Due], now: datetime) -> int:
    """Change the workloads of ``batch`` in one transaction: together, or one by one."""
    failed: list[tuple[_Due, Exception]] = []

    def skip_or_fail(due: _Due, exc: Exception) -> None:
        if isinstance(exc, StaleDataError):  # raced another process
            log.info("lifecycle_change_skipped", workload_id=due.workload_id, error=str(exc))
        elif blames_item(exc):  # rolled back alone; the others commit
            failed.append((due, exc))
        else:  # a deadlock, the connection: retried next tick
            log.info("lifecycle_change_skipped", workload_id=due.workload_id, error=str(exc)[:200])

    with ctx.db.write() as session:
        if _changed_together(session, batch, now):
            return len(batch)
        batch = _unchanged(session, batch)  # most often another process finished some
        if not batch:
            return 0
        if _changed_together(session, batch, now):
            return len(batch)
        changed = sum(
            write_each(session, batch, lambda due: _change(session, due, now), skip_or_fail)
        )
    # After the batch has committed: each fails in a transaction of its own.
    return changed + sum(_give_up(ctx, due, exc) for due, exc in failed)


def _give_up(ctx: ServiceContext, due: _Due, exc: Exception) -> int:
    """A workload whose change itself fails (not a race): logged once and failed, if it
    can be (a preempted one cannot; one whose release breaks a guard fails the same way);
    else left as it is, retried next tick without another log line."""
    report_item_failure(_LOOP, due.workload_id, exc, f"could not change from {due.seen.value}")
    reason = failure_reason(f"the lifecycle loop could not change it from {due.seen.value}", exc)
    return int(fail_workload(ctx, due.workload_id, reason, loop=_LOOP, expect={due.seen}))


def _changed_together(session: Session, batch: list[_Due], now: datetime) -> bool:
    """:func:`_change_together` in a savepoint; False (nothing written) on a conflict."""
    return write_together(
        session, lambda: _change_together(session, batch, now), _one_by_one, "lifecycle"
    )


def _one_by_one(exc: Exception) -> bool:
    """Every failure of the batch sends it one by one: a race or a container to tear
    down (logged at debug), or one bad workload, which then fails alone."""
    if not isinstance(exc, (StaleWorkload, DBAPIError, _OneByOne)):
        log.info("lifecycle_batch_failed", error=type(exc).__name__)
    return True


def _unchanged(session: Session, batch: list[_Due]) -> list[_Due]:
    """The workloads of ``batch`` still at the version the tick read."""
    current = workload_store.workload_versions(session, [due.workload_id for due in batch])
    return [due for due in batch if current.get(due.workload_id) == due.version]


def _change_together(session: Session, batch: list[_Due], now: datetime) -> None:
    """Requeue or finish every workload of ``batch``, one statement per table; raises
    (and the caller rolls the savepoint back, releases included) if any changed since the
    tick read it.

    Rows are locked in the scheduler apply's order, servers and devices before workloads
    (``ReservationBatch.in_lock_order`` within each), so the two never deadlock."""
    advances = StatusAdvances()
    finishing = []
    for due in batch:
        if due.seen is WorkloadStatus.PREEMPTED:
            steps = [(WorkloadStatus.PENDING, _REQUEUED)]
        else:
            steps = [(WorkloadStatus.SUCCEEDED, _finished(due.duration_s))]
            finishing.append(due.workload_id)
        advances.add(due.workload_id, due.version, due.seen, steps, now)
    # Locked as release_allocation does: a container may be being recorded right now.
    allocations = workload_store.lock_allocations_of(session, finishing)
    if any(row.container_id for row in allocations):
        raise _OneByOne("a replica has a container to tear down")
    reservations = ReservationBatch()
    for row in allocations:
        resources = allocation_resources(row)  # with the GPU memory it reserved
        reservations.add(row.server_id, resources, ((i, m) for i, m in row.gpu_allocation))
    release_batch(session, reservations)
    advances.write(session)  # the version checks: a workload changed elsewhere raises here
    workload_store.delete_allocations(session, [row.id for row in allocations])


_REQUEUED = "back in the queue after preemption"


def _finished(duration_s: float | None) -> str:
    return f"finished after {duration_s:g}s (simulated)"


def _change(session: Session, due: _Due, now: datetime) -> int:
    """Requeue (preempted) or finish (running, simulated) one workload; 1 if it changed."""
    row = session.get(WorkloadRow, due.workload_id, populate_existing=True)
    if row is None or row.status != due.seen.value:
        return 0  # changed since the tick looked (stopped, deleted, another process)
    if due.seen is WorkloadStatus.PREEMPTED:
        transition_workload(session, row, WorkloadStatus.PENDING, _REQUEUED, now)
        return 1
    transition_workload(session, row, WorkloadStatus.SUCCEEDED, _finished(row.duration_s), now)
    release_workload(session, row)
    return 1
