"""The queue view: pending work in the order the scheduler will consider it, with reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gpuyard.auth.caller import Caller
from gpuyard.domain.workload_records import Workload
from gpuyard.scheduler.decisions import Pending
from gpuyard.scheduler.estimates import estimate_starts
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import visible_workloads
from gpuyard.services.scheduling.cycle import plan_cycle, scheduler_config
from gpuyard.store.workloads import declared_run_times, workloads_by_id


@dataclass(frozen=True)
class QueueEntry:
    position: int
    workload: Workload
    pending: Pending
    #: When it should start if running work ends when it declared (None: unknown).
    estimated_start: datetime | None = None


def queue_view(ctx: ServiceContext, caller: Caller) -> list[QueueEntry]:
    """Dry-run one cycle: what would still wait, in the order it is considered, with the
    start each can expect (:mod:`gpuyard.scheduler.estimates`). Positions are global;
    callers see only the entries they may read (WORKLOAD_READ)."""
    state, result = plan_cycle(ctx)
    waiting = {p.workload_id: p for p in result.pending}
    # dict.fromkeys: a workload with several gaps of missing replicas is queued once.
    ordered = [wid for wid in dict.fromkeys(result.order) if wid in waiting]
    with ctx.db.read() as session:
        rows = workloads_by_id(session, ordered, visible_workloads(caller))
        declared = declared_run_times(session) if rows else {}
    starts: dict[str, float] = {}
    if rows:
        now = ctx.now().timestamp()
        starts = estimate_starts(
            state.snapshot,
            state.pending,
            result,
            scheduler_config(ctx),
            now,
            declared,
            ctx.engine_cache,
        )
    return [
        QueueEntry(position, rows[wid], waiting[wid], _as_time(starts.get(wid)))
        for position, wid in enumerate(ordered, start=1)
        if wid in rows
    ]


def _as_time(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)
