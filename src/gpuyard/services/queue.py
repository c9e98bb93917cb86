"""The queue view: pending work in the order the scheduler will consider it, with reasons."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from gpuyard.auth.caller import Caller
from gpuyard.scheduler.decisions import Pending
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling import plan_cycle
from gpuyard.store.workload_tables import WorkloadRow


@dataclass(frozen=True)
class QueueEntry:
    position: int
    workload: WorkloadRow
    pending: Pending


def queue_view(ctx: ServiceContext, caller: Caller) -> list[QueueEntry]:
    """Dry-run one cycle: what would still wait, in the order it is considered. Positions
    are global; a user sees only their own entries."""
    _state, result = plan_cycle(ctx)
    waiting = {p.workload_id: p for p in result.pending}
    ordered = [wid for wid in result.order if wid in waiting]
    with ctx.db.read() as session:
        rows = {
            r.id: r for r in session.scalars(select(WorkloadRow).where(WorkloadRow.id.in_(ordered)))
        }
    entries = []
    for position, wid in enumerate(ordered, start=1):
        row = rows.get(wid)
        if row is not None and caller.owns_or_manages(row.owner_id):
            entries.append(QueueEntry(position, row, waiting[wid]))
    return entries
