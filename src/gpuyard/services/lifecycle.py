"""Time-driven workload changes: preempted work returns to the queue after its backoff;
simulated workloads with a duration succeed when it has passed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.allocations import release_workload
from gpuyard.services.context import ServiceContext
from gpuyard.services.workload_transitions import transition_workload
from gpuyard.store.base import as_utc
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow


def advance_lifecycles(ctx: ServiceContext) -> int:
    """One tick; returns how many workloads changed status."""
    now = ctx.now()
    changed = 0
    with ctx.db.write() as session:
        due = session.scalars(
            select(WorkloadRow).where(
                WorkloadRow.status == WorkloadStatus.PREEMPTED.value,
                WorkloadRow.requeue_at <= now,
            )
        ).all()
        for row in due:
            transition_workload(
                session, row, WorkloadStatus.PENDING, "back in the queue after preemption", now
            )
            changed += 1
        # duration_s is virtual time for simulated servers only: a workload with any
        # replica on a server with an agent runs for as long as its container does.
        on_agents = (
            select(AllocationRow.workload_id)
            .join(ServerRow, ServerRow.id == AllocationRow.server_id)
            .where(ServerRow.agent_url.is_not(None))
        )
        timed = session.scalars(
            select(WorkloadRow).where(
                WorkloadRow.status == WorkloadStatus.RUNNING.value,
                WorkloadRow.duration_s.is_not(None),
                WorkloadRow.id.not_in(on_agents),
            )
        ).all()
        for row in timed:
            if row.duration_s is None or row.started_at is None:
                continue
            if as_utc(row.started_at) + timedelta(seconds=row.duration_s) <= now:
                release_workload(session, row)
                transition_workload(
                    session,
                    row,
                    WorkloadStatus.SUCCEEDED,
                    f"finished after {row.duration_s:g}s (simulated)",
                    now,
                )
                changed += 1
    if changed:
        ctx.scheduler_wakeup.notify()
    return changed
