"""The queue view: pending work in the order the scheduler will consider it, with reasons."""

from __future__ import annotations

from dataclasses import dataclass

from gpuyard.auth.caller import Caller
from gpuyard.domain.workload_records import Workload
from gpuyard.scheduler.decisions import Pending
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import visible_workloads
from gpuyard.services.scheduling.cycle import plan_cycle
from gpuyard.store.workloads import workloads_by_id


@dataclass(frozen=True)
class QueueEntry:
    position: int
    workload: Workload
    pending: Pending


def queue_view(ctx: ServiceContext, caller: Caller) -> list[QueueEntry]:
    """Dry-run one cycle: what would still wait, in the order it is considered. Positions
    are global; callers see only the entries they may read (WORKLOAD_READ)."""
    _state, result = plan_cycle(ctx)
    waiting = {p.workload_id: p for p in result.pending}
    # dict.fromkeys: a workload with several gaps of missing replicas is queued once.
    ordered = [wid for wid in dict.fromkeys(result.order) if wid in waiting]
    with ctx.db.read() as session:
        rows = workloads_by_id(session, ordered, visible_workloads(caller))
    return [
        QueueEntry(position, rows[wid], waiting[wid])
        for position, wid in enumerate(ordered, start=1)
        if wid in rows
    ]
