"""Loop leases: each background loop runs in one process of the deployment at a time.

Several processes may run the loops (`gpuyard worker`, `serve` + `worker`, several `serve`
on PostgreSQL). A loop that declares a lease (``Loop.lease``) ticks only in the process
holding that lease row (``store/leases.py``): the health loop counts one missed probe per
interval, not one per process, and reconcile, starter and cleanup do their work once.
Each loop has a lease of its own, so the loops spread over the processes. The holder renews
it at every tick; it lapses ``max(10 s, 5 intervals)`` after the holder dies and is
released on a clean stop, so another process takes over at once.

One setting switches every lease: ``GPUYARD_SCHEDULER_LEASE`` (its name predates the other
loops' leases). Unset, leases are on with PostgreSQL and off with the embedded SQLite.

The scheduler lease (:data:`SCHEDULER_LEASE`) makes one process the deployment's active
scheduler, so the others do not plan decisions that would go stale; correctness never
depends on it (every admission is a compare-and-set). The scheduling cycle and the
lifecycle tick take it themselves (:func:`holds_scheduler_lease`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from gpuyard.services.context import ServiceContext
from gpuyard.store.leases import leases_on_by_default, release_lease, try_acquire_lease

SCHEDULER_LEASE = "scheduler"


def loop_leases_enabled(ctx: ServiceContext) -> bool:
    configured = ctx.settings.scheduler_lease
    return leases_on_by_default(ctx.db) if configured is None else configured


def lease_ttl(interval_s: float) -> timedelta:
    """How long a lease outlives its holder's last renewal."""
    return timedelta(seconds=max(10.0, 5 * interval_s))


def hold_lease(ctx: ServiceContext, name: str, interval_s: float) -> bool:
    """Take or renew ``name`` for this process: True when it may tick (or leases are off).

    One small write transaction; False while another live process holds it."""
    if not loop_leases_enabled(ctx):
        return True
    with ctx.db.write() as session:
        return try_acquire_lease(session, name, ctx.instance_id, ctx.now(), lease_ttl(interval_s))


def holds_scheduler_lease(ctx: ServiceContext) -> bool:
    """True when this process is the deployment's active scheduler (or leases are off).

    Another process holding the lease simply means this one does not plan; if it dies,
    the lease lapses after a few intervals and the next process to try takes over."""
    return hold_lease(ctx, SCHEDULER_LEASE, ctx.settings.scheduler_interval_s)


def release_leases(ctx: ServiceContext, names: Iterable[str]) -> None:
    """On a clean stop: let the leases this process holds lapse at once (others untouched)."""
    if not loop_leases_enabled(ctx):
        return
    with ctx.db.write() as session:
        for name in sorted(set(names)):
            release_lease(session, name, ctx.instance_id, ctx.now())
