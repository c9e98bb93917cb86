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

**Fencing.** Taking a lease gives its token (:class:`LeaseFence`); the runner hands it to
the tick. A write that must not be done twice by a holder that paused past its lease
while another took over (the scheduler's apply, the starter's record, the cleanup's
outcome) calls :func:`check_fences` in its own transaction: if the lease moved on, the
transaction rolls back (:class:`Fenced`, logged ``fenced``). The database's guards
(compare-and-set, versions) remain what keeps reservations exact; the fence keeps a stale
holder from doing the work a second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.store.leases import (
    acquire_lease,
    fence_holds,
    leases_on_by_default,
    release_lease,
)

log = get_logger(__name__)

SCHEDULER_LEASE = "scheduler"


@dataclass(frozen=True)
class LeaseFence:
    """A holder's term of a lease: writes of the term check it is still current."""

    name: str
    holder: str
    token: int


class Fenced(Exception):
    """The lease this write was fenced by has moved on: the transaction rolls back."""

    def __init__(self, fence: LeaseFence) -> None:
        super().__init__(f"lease {fence.name} no longer held at token {fence.token}")
        self.fence = fence


@dataclass(frozen=True)
class LeaseGrant:
    """Whether this process may tick, and the fence of its term (None: leases are off)."""

    held: bool
    fence: LeaseFence | None = None


#: The grant when leases are off: every process ticks, nothing to fence by.
UNLEASED = LeaseGrant(held=True)


def loop_leases_enabled(ctx: ServiceContext) -> bool:
    configured = ctx.settings.scheduler_lease
    return leases_on_by_default(ctx.db) if configured is None else configured


def lease_ttl(interval_s: float) -> timedelta:
    """How long a lease outlives its holder's last renewal."""
    return timedelta(seconds=max(10.0, 5 * interval_s))


def take_lease(ctx: ServiceContext, name: str, interval_s: float) -> LeaseGrant:
    """Take or renew ``name`` for this process: held with its fence when it may tick.

    One small write transaction; not held while another live process holds it. Leases
    off: held, with no fence."""
    if not loop_leases_enabled(ctx):
        return UNLEASED
    with ctx.db.write() as session:
        token = acquire_lease(session, name, ctx.instance_id, ctx.now(), lease_ttl(interval_s))
    if token is None:
        return LeaseGrant(held=False)
    return LeaseGrant(held=True, fence=LeaseFence(name, ctx.instance_id, token))


def hold_lease(ctx: ServiceContext, name: str, interval_s: float) -> bool:
    """Take or renew ``name`` for this process: True when it may tick (or leases are off)."""
    return take_lease(ctx, name, interval_s).held


def take_scheduler_lease(ctx: ServiceContext) -> LeaseGrant:
    """The deployment's active scheduler's lease, with its fence (see :func:`take_lease`)."""
    return take_lease(ctx, SCHEDULER_LEASE, ctx.settings.scheduler_interval_s)


def holds_scheduler_lease(ctx: ServiceContext) -> bool:
    """True when this process is the deployment's active scheduler (or leases are off).

    Another process holding the lease simply means this one does not plan; if it dies,
    the lease lapses after a few intervals and the next process to try takes over."""
    return take_scheduler_lease(ctx).held


def check_fences(session: Session, fences: Iterable[LeaseFence | None]) -> None:
    """In the caller's write transaction, before its writes: raise :class:`Fenced` (the
    transaction rolls back) unless every lease is still held at its token. Locks the lease
    rows until the transaction ends, in name order (two transactions fencing on the same
    leases never wait on each other in a cycle); None (leases off) checks nothing."""
    for fence in sorted({f for f in fences if f is not None}, key=lambda f: f.name):
        if not fence_holds(session, fence.name, fence.holder, fence.token):
            log.warning("fenced", lease=fence.name, token=fence.token, holder=fence.holder)
            raise Fenced(fence)


def release_leases(ctx: ServiceContext, names: Iterable[str]) -> None:
    """On a clean stop: let the leases this process holds lapse at once (others untouched)."""
    if not loop_leases_enabled(ctx):
        return
    with ctx.db.write() as session:
        for name in sorted(set(names)):
            release_lease(session, name, ctx.instance_id, ctx.now())
