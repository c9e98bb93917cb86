"""Replay an arrival sequence into an empty cluster and read the allocation at checkpoints.

No departures, and a pod that fits nowhere when it arrives is dropped (not retried), as in
the FGD paper's simulator. The checkpoints are the arrival counts at which the arrived GPU
demand (placed or not) first reaches a fraction of the cluster's GPU capacity.

- The engine: pods go to ``schedule_cycle`` in arrival order, in batches between
  checkpoints. Within a cycle the queue is priority, then submit time, and every arrival
  has the same priority and a later submit time, so a cycle decides its batch one pod after
  another in arrival order, each decision assuming the earlier ones, and a pod that fits
  nowhere does not block the next: the same sequence of decisions as one cycle per pod, at
  a fraction of the cost, except that a scorer learning from the cycle (``fgd``'s workload
  mix) sees the whole batch as pending (one pod per cycle moves the S5 quick figure by
  about 1.5 points; bench/analysis.md). Starvation reservations and preemption are off (no
  arrival waits, all have one priority).
- A baseline: :class:`~bench.baselines.base.NaivePlacer`, one pod at a time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.baselines import NaivePlacer, ServerChoice
from bench.simstore import SimStore
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, SchedulerConfig

BATCH = 500  # arrivals per engine cycle between checkpoints


@dataclass
class Replay:
    """Unallocated GPU share (0..1) at each checkpoint fraction, placed pods, wall time."""

    policy: str
    unallocated: dict[float, float] = field(default_factory=dict)
    placed: int = 0
    arrived: int = 0
    seconds: float = 0.0


def checkpoints(
    arrivals: Sequence[PendingWorkload], capacity_milli: int, fractions: Sequence[float]
) -> dict[float, int]:
    """For each fraction, how many arrivals it takes for their GPU demand to reach it."""
    out: dict[float, int] = {}
    demand = 0
    todo = sorted(fractions)
    for count, workload in enumerate(arrivals, 1):
        demand += workload.resources.gpu_milli * workload.replicas_missing
        while todo and demand >= todo[0] * capacity_milli:
            out[todo.pop(0)] = count
    for fraction in todo:
        out[fraction] = len(arrivals)
    return out


def replay_engine(
    profile: str,
    snapshot: ClusterSnapshot,
    arrivals: Sequence[PendingWorkload],
    marks: dict[float, int],
    name: str = "",
) -> Replay:
    """Replay ``arrivals`` through the engine with registry profile ``profile``. A profile
    whose scorer learns from the cycle (``fgd``'s workload mix) learns from the running
    replicas and the batch being decided, as it would in the product."""
    config = SchedulerConfig(profile=profile, starvation_seconds=float("inf"), preemption=False)
    store = SimStore(snapshot.servers, snapshot.running)
    cache = EngineCache()  # the store hands back unchanged servers' views, as the product
    capacity = sum(s.capacity.gpu_milli for s in snapshot.servers)
    out = Replay(name or profile)
    now = float(len(arrivals) + 1)
    started = time.perf_counter()
    done = 0
    for fraction, end in sorted(marks.items(), key=lambda kv: kv[1]):
        while done < end:
            batch = arrivals[done : min(end, done + BATCH)]
            by_id = {w.workload_id: w for w in batch}
            result = schedule_cycle(store.snapshot(), batch, config, now, cache)
            for admission in result.admitted:
                store.apply(admission, by_id[admission.workload_id], now)
                out.placed += 1
            done += len(batch)
        out.unallocated[fraction] = 1 - store.allocated().gpu_milli / capacity
    out.arrived = done
    out.seconds = time.perf_counter() - started
    return out


def replay_baseline(
    choice: ServerChoice,
    snapshot: ClusterSnapshot,
    arrivals: Sequence[PendingWorkload],
    marks: dict[float, int],
) -> Replay:
    placer = NaivePlacer(choice, snapshot)
    capacity = sum(s.capacity.gpu_milli for s in snapshot.servers)
    out = Replay(choice.name)
    at: dict[int, list[float]] = {}
    for fraction, end in marks.items():
        at.setdefault(end, []).append(fraction)
    last = max(marks.values(), default=0)
    started = time.perf_counter()
    for count, workload in enumerate(arrivals[:last], 1):
        if placer.place(workload):
            out.placed += 1
        for fraction in at.get(count, ()):
            out.unallocated[fraction] = 1 - placer.allocated_gpu_milli / capacity
    out.arrived = last
    out.seconds = time.perf_counter() - started
    return out
