"""Background loops: each has a name, an interval, a jitter and a lease, and runs in its
own thread.

A tick opens its own short transactions. Loops sleep on a Wakeup so services can hint
them to run at once after a commit. One instance of a tick runs at a time per process,
and a loop with a lease ticks in one process of the deployment at a time: the one holding
its lease row (``services/loops/leases.py``); the others skip their ticks. The runner
hands the tick the fence of its lease term (None where leases are off or the tick takes
its lease itself), so the tick's critical writes roll back once another process took the
lease over. The database guards (compare-and-set) keep ticks safe whatever the leases do.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext, Wakeup
from gpuyard.services.loops.leases import UNLEASED, Fenced, LeaseFence, LeaseGrant, take_lease

log = get_logger(__name__)

#: An aligned loop wakes this long (at most a 20th of its interval) after a slot boundary.
ALIGN_MARGIN_S = 0.25


@dataclass
class Loop:
    name: str
    interval_s: float
    #: One tick, given the fence of this process's term of ``lease`` (None when leases
    #: are off, the loop has none, or the tick takes its lease itself).
    tick: Callable[[LeaseFence | None], object]
    _: KW_ONLY
    #: Each sleep is the interval times 1 +- this share of it (drawn at random).
    jitter: float
    #: The lease that makes this loop tick in one process at a time (renewed by the runner
    #: before each tick, for ``max(10 s, 5 intervals)``), or None where every process must
    #: tick (per-process work such as the change watch).
    lease: str | None
    #: The tick takes the lease itself (the scheduling cycle and the lifecycle tick, for
    #: the scheduler's lease), so the runner does not take it a second time per tick.
    lease_taken_by_tick: bool = False
    wakeup: Wakeup = field(default_factory=Wakeup)
    #: After a tick of T seconds, a wake-up starts the next one no sooner than
    #: ``rest_ratio * T`` later: a loop woken by every commit (the scheduler) then coalesces
    #: bursts into one tick and leaves the API at least this share of the interpreter.
    rest_ratio: float = 0.0
    #: ...and no sooner than this many seconds later: cheap ticks (the scheduler's cached
    #: snapshot) would otherwise run once per commit, each paying a fixed cost (the
    #: engine's view of the whole fleet) for a handful of new workloads.
    min_rest_s: float = 0.0
    #: Ticks start just after each boundary of the wall clock's ``interval_s`` slots (no
    #: jitter): a loop that files its work by slot (the history loop's raw samples) then
    #: ticks once per slot, where a sleep of interval +- jitter from a tick's end skips
    #: some slots and ticks twice in others. Its first tick waits for a boundary too.
    aligned: bool = False

    def __post_init__(self) -> None:
        if self.aligned and self.jitter:
            raise ValueError(f"loop {self.name}: an aligned loop takes no jitter")

    def next_delay(self, now: float) -> float:
        """Seconds to sleep after a tick that ended at wall-clock time ``now`` (epoch s)."""
        if self.aligned:
            # Just past the next boundary: an early wake-up (the monotonic clock the wait
            # uses drifts from the wall clock) must not land in the slot just ticked.
            margin = min(ALIGN_MARGIN_S, self.interval_s / 20)
            return self.interval_s - now % self.interval_s + margin
        return self.interval_s * (1 + random.uniform(-self.jitter, self.jitter))


class LoopRunner:
    """Runs a set of loops in daemon threads until :meth:`stop`.

    ``ctx`` is the process whose leases gate the loops' ticks; None (tests of the runner
    alone) ticks every loop."""

    def __init__(self, loops: list[Loop], ctx: ServiceContext | None = None) -> None:
        self.loops = loops
        self.ctx = ctx
        self._holding: dict[str, bool] = {}  # lease name -> held at the last try
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for loop in self.loops:
            thread = threading.Thread(
                target=self._run, args=(loop,), name=f"loop-{loop.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for loop in self.loops:
            loop.wakeup.notify()
        for thread in self._threads:
            thread.join(timeout)

    def leases(self) -> set[str]:
        """The leases this runner's loops take (to release on a clean stop)."""
        return {loop.lease for loop in self.loops if loop.lease is not None}

    def run_tick(self, loop: Loop) -> bool:
        """One tick of ``loop``, unless another process holds its lease: True if it ran."""
        grant = self._grant(loop)
        if not grant.held:
            return False
        try:
            loop.tick(grant.fence)
        except Fenced:  # paused past its lease: another process took over (logged "fenced")
            log.info("loop_tick_fenced", loop=loop.name)
        return True

    def _grant(self, loop: Loop) -> LeaseGrant:
        if self.ctx is None or loop.lease is None or loop.lease_taken_by_tick:
            return UNLEASED
        grant = take_lease(self.ctx, loop.lease, loop.interval_s)
        held = grant.held
        if held != self._holding.get(loop.lease, not held):  # log changes, not every tick
            log.info("loop_lease_taken" if held else "loop_lease_held_elsewhere", loop=loop.name)
        self._holding[loop.lease] = held
        return grant

    def _run(self, loop: Loop) -> None:
        failing: str | None = None  # the error of the ticks failing in a row, if any
        failed_ticks = 0
        if loop.aligned:
            # Its first tick waits for a slot boundary too: at start-up it would meet the
            # process's own warm-up and its first requests.
            self._stopping.wait(loop.next_delay(time.time()))
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.run_tick(loop)
            except Exception as exc:  # a failing tick must not kill the loop; log and go on
                # Items are isolated inside the ticks (services/loops/item_failures.py); what
                # still fails a whole tick is logged when it starts, not on every tick.
                error = f"{type(exc).__name__}: {exc}"[:500]
                failed_ticks += 1
                if error != failing:
                    failing = error
                    log.exception("loop_tick_failed", loop=loop.name)
            else:
                if failing is not None:
                    log.info("loop_tick_recovered", loop=loop.name, failed_ticks=failed_ticks)
                failing, failed_ticks = None, 0
            delay = loop.next_delay(time.time())
            took = time.monotonic() - started
            rest = min(max(loop.rest_ratio * took, loop.min_rest_s), delay)
            if rest > 0:
                self._stopping.wait(rest)  # wake-ups arriving meanwhile stay set
            loop.wakeup.wait(max(delay - rest, 0.0))
