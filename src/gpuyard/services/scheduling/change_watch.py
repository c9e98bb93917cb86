"""Waking the scheduler for changes other processes commit.

A commit wakes the scheduler of its own process at once (``ServiceContext.scheduler_wakeup``),
but a `gpuyard worker` beside `serve --no-loops` processes, or several `serve` processes on
one PostgreSQL database, hear nothing of each other's commits and would otherwise wait for
their scheduler interval (2 s by default). This loop reads a cheap fingerprint of what the
scheduler cares about every ``change_watch_interval_s`` and wakes the scheduler when it
moved: the highest change marks of servers and workloads (indexed, set by the triggers of
migration 0005) and the number of pending workloads.

On PostgreSQL the marks are transaction ids, which commit out of order: a change committed
by an older transaction after a newer one may leave both maxima where they were. A new
submission still moves the pending count; anything else such a change does is seen at the
next scheduler interval at the latest. A wake-up is only a hint, so a missed or spurious
one never changes a decision.

While the bus (``services/bus``: Redis pub/sub, or PostgreSQL LISTEN/NOTIFY) is
connected, other processes' commits arrive as notices and wake the scheduler at once, so
this tick reads nothing; when the bus is down it polls again, starting afresh (the bus
wakes every loop once as it goes down and as it comes back).
"""

from __future__ import annotations

from gpuyard.services.context import ServiceContext
from gpuyard.store.snapshot_source import Fingerprint, change_fingerprint


class ChangeWatch:
    """A loop tick: wake the scheduler when the database's fingerprint moved."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.last: Fingerprint | None = None

    def __call__(self) -> bool:
        """Read the fingerprint; True (and a wake-up) when it changed since the last read.
        Nothing to read while the bus carries the other processes' commits."""
        if self.ctx.bus.live:
            self.last = None
            return False
        with self.ctx.db.read() as session:
            seen = change_fingerprint(session)
        moved = self.last is not None and seen != self.last
        self.last = seen
        if moved:
            self.ctx.scheduler_wakeup.notify()
        return moved
