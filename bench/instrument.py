"""Per-workload decision time inside one engine cycle.

The engine decides a whole pending list per cycle, so "decision latency" is measured as the
wall time of each workload's own step inside the cycle (filter, score, assume; preemption
when it applies): :func:`timed_decisions` wraps the engine's per-workload step for the
duration of a ``with`` block. The cycle's fixed cost (building the working state over the
whole fleet) is measured separately, as a cycle with an empty pending list. Timing adds
about a microsecond per workload, so throughput is always measured in a separate,
uninstrumented run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from gpuyard.scheduler import engine


@contextmanager
def timed_decisions() -> Iterator[list[float]]:
    """Collect the seconds spent on each workload of every cycle run inside the block."""
    cycle_class: Any = getattr(engine, "_Cycle", None)
    original: Callable[..., None] | None = getattr(cycle_class, "schedule", None)
    if original is None:
        raise RuntimeError("gpuyard.scheduler.engine._Cycle.schedule moved; update bench")
    samples: list[float] = []

    def timed(self: object, req: object) -> None:
        started = perf_counter()
        original(self, req)
        samples.append(perf_counter() - started)

    cycle_class.schedule = timed
    try:
        yield samples
    finally:
        cycle_class.schedule = original
