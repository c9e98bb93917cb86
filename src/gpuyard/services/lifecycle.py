"""Time-driven workload changes: preempted work returns to the queue after its backoff;
simulated workloads with a duration succeed when it has passed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.services.allocations import release_workload
from gpuyard.services.context import ServiceContext
from gpuyard.services.workload_transitions import transition_workload
from gpuyard.store.base import as_utc
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

log = get_logger(__name__)


#: Workloads changed per write transaction (each in its own savepoint).
LIFECYCLE_BATCH = 64


def advance_lifecycles(ctx: ServiceContext) -> int:
    """One tick; returns how many workloads changed status.

    Each workload changes in its own savepoint, up to :data:`LIFECYCLE_BATCH` of them per
    write transaction. Its status change, checked against the version the tick read, is
    flushed before its reservations are released. So when several processes run this
    loop, the second to reach a workload fails on the version before it can release
    anything twice. One workload that fails (that race, or a deadlock with the
    scheduler's apply) rolls back alone and is retried next tick; the others commit."""
    now = ctx.now()
    with ctx.db.read() as session:
        due = list(
            session.scalars(
                select(WorkloadRow.id).where(
                    WorkloadRow.status == WorkloadStatus.PREEMPTED.value,
                    WorkloadRow.requeue_at <= now,
                )
            )
        )
        # duration_s is virtual time for simulated servers only: a workload with any
        # replica on a server with an agent runs for as long as its container does.
        on_agents = (
            select(AllocationRow.workload_id)
            .join(ServerRow, ServerRow.id == AllocationRow.server_id)
            .where(ServerRow.agent_url.is_not(None))
        )
        timed = session.execute(
            select(WorkloadRow.id, WorkloadRow.started_at, WorkloadRow.duration_s).where(
                WorkloadRow.status == WorkloadStatus.RUNNING.value,
                WorkloadRow.duration_s.is_not(None),
                WorkloadRow.id.not_in(on_agents),
            )
        ).all()
    finished = [
        workload_id
        for workload_id, started_at, duration_s in timed
        if started_at is not None
        and duration_s is not None
        and as_utc(started_at) + timedelta(seconds=duration_s) <= now
    ]
    changes = [(w, WorkloadStatus.PREEMPTED) for w in due]
    changes += [(w, WorkloadStatus.RUNNING) for w in finished]
    changed = sum(
        _change_batch(ctx, changes[first : first + LIFECYCLE_BATCH], now)
        for first in range(0, len(changes), LIFECYCLE_BATCH)
    )
    if changed:
        ctx.scheduler_wakeup.notify()
    return changed


def _change_batch(
    ctx: ServiceContext, batch: list[tuple[str, WorkloadStatus]], now: datetime
) -> int:
    """Change each workload of ``batch`` in its own savepoint of one transaction."""
    changed = 0
    with ctx.db.write() as session:
        for workload_id, seen in batch:
            try:
                with session.begin_nested():
                    changed += _change(session, workload_id, seen, now)
            except (StaleDataError, DBAPIError) as exc:  # raced another process, or a deadlock
                log.info("lifecycle_change_skipped", workload_id=workload_id, error=str(exc)[:200])
    return changed


def _change(session: Session, workload_id: str, seen: WorkloadStatus, now: datetime) -> int:
    """Requeue (preempted) or finish (running, simulated) one workload; 1 if it changed."""
    row = session.get(WorkloadRow, workload_id, populate_existing=True)
    if row is None or row.status != seen.value:
        return 0  # changed since the tick looked (stopped, deleted, another process)
    if seen is WorkloadStatus.PREEMPTED:
        reason = "back in the queue after preemption"
        transition_workload(session, row, WorkloadStatus.PENDING, reason, now)
        return 1
    reason = f"finished after {row.duration_s:g}s (simulated)"
    transition_workload(session, row, WorkloadStatus.SUCCEEDED, reason, now)
    session.flush()  # the version check, before any counter moves
    release_workload(session, row)
    return 1
