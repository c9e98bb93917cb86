"""The scheduler lease: which process is the deployment's active scheduler.

On PostgreSQL several processes may run the scheduling loop; a lease row makes one of them
decide, so the others do not plan decisions that would go stale. Correctness never
depends on it (every admission is a compare-and-set). The scheduling cycle and the
lifecycle tick take it themselves (each loop's lease in general: ``services/loops/leases.py``,
which also says when leases are on).
"""

from __future__ import annotations

from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.leases import hold_lease, loop_leases_enabled, release_leases

SCHEDULER_LEASE = "scheduler"

#: The old name of the switch, which now covers every loop's lease.
scheduler_lease_enabled = loop_leases_enabled


def holds_scheduler_lease(ctx: ServiceContext) -> bool:
    """True when this process is the deployment's active scheduler (or leases are off).

    Another process holding the lease simply means this one does not plan; if it dies,
    the lease lapses after a few intervals and the next process to try takes over."""
    return hold_lease(ctx, SCHEDULER_LEASE, ctx.settings.scheduler_interval_s)


def give_up_scheduler_lease(ctx: ServiceContext) -> None:
    """On a clean stop: let another process take over at once."""
    release_leases(ctx, [SCHEDULER_LEASE])
