"""Background loops: each has a name, an interval and a jitter, and runs in its own thread.

A tick opens its own short transactions. Loops sleep on a Wakeup so services can hint
them to run at once after a commit. One instance of a tick runs at a time per process;
across processes the database guards (compare-and-set) keep concurrent ticks safe.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gpuyard.log import get_logger
from gpuyard.services.context import Wakeup

log = get_logger(__name__)


@dataclass
class Loop:
    name: str
    interval_s: float
    tick: Callable[[], object]
    jitter: float = 0.2  # +-20 % of the interval
    wakeup: Wakeup = field(default_factory=Wakeup)
    #: After a tick of T seconds, a wake-up starts the next one no sooner than
    #: ``rest_ratio * T`` later: a loop woken by every commit (the scheduler) then coalesces
    #: bursts into one tick and leaves the API at least this share of the interpreter.
    rest_ratio: float = 0.0
    #: ...and no sooner than this many seconds later: cheap ticks (the scheduler's cached
    #: snapshot) would otherwise run once per commit, each paying a fixed cost (the
    #: engine's view of the whole fleet) for a handful of new workloads.
    min_rest_s: float = 0.0

    def next_delay(self) -> float:
        return self.interval_s * (1 + random.uniform(-self.jitter, self.jitter))


class LoopRunner:
    """Runs a set of loops in daemon threads until :meth:`stop`."""

    def __init__(self, loops: list[Loop]) -> None:
        self.loops = loops
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

    def _run(self, loop: Loop) -> None:
        failing: str | None = None  # the error of the ticks failing in a row, if any
        failed_ticks = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                loop.tick()
            except Exception as exc:  # a failing tick must not kill the loop; log and go on
                # Items are isolated inside the ticks (services/item_failures.py); what
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
            delay = loop.next_delay()
            took = time.monotonic() - started
            rest = min(max(loop.rest_ratio * took, loop.min_rest_s), delay)
            if rest > 0:
                self._stopping.wait(rest)  # wake-ups arriving meanwhile stay set
            loop.wakeup.wait(max(delay - rest, 0.0))
