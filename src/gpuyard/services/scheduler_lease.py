"""The scheduler lease: which process is the deployment's active scheduler.

On PostgreSQL several processes may run the scheduling loop; a lease row makes one of them
decide, so the others do not plan decisions that would go stale. Correctness never
depends on it (every admission is a compare-and-set). With the embedded SQLite it is off
unless ``GPUYARD_SCHEDULER_LEASE=true``.
"""

from __future__ import annotations

from datetime import timedelta

from gpuyard.services.context import ServiceContext
from gpuyard.store.leases import release_lease, try_acquire_lease

SCHEDULER_LEASE = "scheduler"


def scheduler_lease_enabled(ctx: ServiceContext) -> bool:
    configured = ctx.settings.scheduler_lease
    return not ctx.db.is_sqlite if configured is None else configured


def holds_scheduler_lease(ctx: ServiceContext) -> bool:
    """True when this process is the deployment's active scheduler (or leases are off).

    Another process holding the lease simply means this one does not plan; if it dies,
    the lease lapses after a few intervals and the next process to try takes over."""
    if not scheduler_lease_enabled(ctx):
        return True
    ttl = timedelta(seconds=max(10.0, 5 * ctx.settings.scheduler_interval_s))
    with ctx.db.write() as session:
        return try_acquire_lease(session, SCHEDULER_LEASE, ctx.instance_id, ctx.now(), ttl)


def give_up_scheduler_lease(ctx: ServiceContext) -> None:
    """On a clean stop: let another process take over at once."""
    if scheduler_lease_enabled(ctx):
        with ctx.db.write() as session:
            release_lease(session, SCHEDULER_LEASE, ctx.instance_id, ctx.now())
