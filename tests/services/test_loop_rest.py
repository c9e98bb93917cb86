"""A loop woken by every commit coalesces a burst into few ticks: after a tick it rests at
least ``min_rest_s`` (and ``rest_ratio`` times the tick) before a wake-up starts another."""

from __future__ import annotations

import threading
import time

from gpuyard.services.loops.runner import Loop, LoopRunner


def ticks_during_a_burst(min_rest_s: float) -> int:
    """Ticks of a cheap loop while another thread wakes it every millisecond for 0.3 s."""
    count = 0

    def tick(_fence: object) -> None:
        nonlocal count
        count += 1

    loop = Loop("burst", interval_s=10.0, tick=tick, jitter=0.0, lease=None, min_rest_s=min_rest_s)
    runner = LoopRunner([loop])
    runner.start()
    stop = time.monotonic() + 0.3

    def wake_every_millisecond() -> None:
        while time.monotonic() < stop:
            loop.wakeup.notify()
            time.sleep(0.001)

    waker = threading.Thread(target=wake_every_millisecond)
    waker.start()
    waker.join()
    runner.stop()
    return count


def test_min_rest_coalesces_wakeups() -> None:
    coalesced = ticks_during_a_burst(min_rest_s=0.1)
    assert 1 <= coalesced <= 5  # the first tick, then at most one per 0.1 s
    assert ticks_during_a_burst(min_rest_s=0.0) > 2 * coalesced  # without it: per wake-up
