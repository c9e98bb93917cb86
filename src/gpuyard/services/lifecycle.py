"""Time-driven workload changes: preempted work returns to the queue after its backoff;
simulated workloads with a duration succeed when it has passed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
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


def advance_lifecycles(ctx: ServiceContext) -> int:
    """One tick; returns how many workloads changed status.

    Each workload changes in its own short transaction. Its status change, checked
    against the version the tick read, is flushed before its reservations are
    released. So when several processes run this loop (PostgreSQL), the second to
    reach a workload fails on the version before it can release anything twice. One
    workload that fails (that race, or a deadlock with the scheduler's apply) is
    skipped until the next tick instead of failing the whole tick."""
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
    changed = sum(_change(ctx, w, WorkloadStatus.PREEMPTED, now) for w in due)
    changed += sum(_change(ctx, w, WorkloadStatus.RUNNING, now) for w in finished)
    if changed:
        ctx.scheduler_wakeup.notify()
    return changed


def _change(ctx: ServiceContext, workload_id: str, seen: WorkloadStatus, now: datetime) -> int:
    """Requeue (preempted) or finish (running, simulated) one workload; 1 if it changed."""
    try:
        with ctx.db.write() as session:
            row = session.get(WorkloadRow, workload_id)
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
    except (StaleDataError, DBAPIError) as exc:  # raced another process, or a deadlock
        log.info("lifecycle_change_skipped", workload_id=workload_id, error=str(exc)[:200])
        return 0
