"""S3 preemption under churn, on the pure engine with a simulated clock.

Every server (64 cpu, 512 GB, 8 GPUs) starts 90% full of priority-1 work: eight replicas of
0.9 GPU, 7.2 cpu and 57.6 GB, one per device, so every device has 0.1 GPU left. Priority-3
workloads (1 cpu, 2 GB, no GPU; they finish after 5-20 s) arrive as an even stream until
the given number has been placed, and priority-5 arrivals (3 whole GPUs, 1 cpu, 4 GB; they
run 10-30 s) come at 5 per second for the whole simulated horizon: each needs 3 whole
devices, so 3 victims. Victims return to
the queue after the product's backoff (10 s doubling, at most 600 s) and come back where
capacity frees up. One engine cycle per simulated tick decides over everything pending;
:class:`~bench.simstore.SimStore` applies each admission as one transaction would (evict,
then reserve). Throughput is placements per second of engine time.

Minimality is checked separately on small random instances against a brute force over all
victim subsets (:mod:`bench.bruteforce`). Thrash: a preemptor that has to evict more than
once, an admission whose victims are not on the preemptor's server, or a victim placed again
in the cycle that evicted it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from bench.bruteforce import optimum, random_instance
from bench.fleet import make_servers, res
from bench.pg import PgDatabases
from bench.result import ScenarioResult, Table
from bench.simstore import SimStore
from bench.stats import percentile, rate
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.snapshot import PendingWorkload, RunningReplica, SchedulerConfig

P1 = res(7.2, 57.6, 0.9)
P3 = res(1, 2)
P5 = res(1, 4, 3)
BACKOFF_S, BACKOFF_MAX_S = 10.0, 600.0


@dataclass(frozen=True)
class S3Config:
    servers: int
    p3: int  # priority-3 workloads to place
    p3_per_s: float  # their arrival rate (simulated)
    p5_per_s: float
    tick_s: float  # simulated seconds per engine cycle
    horizon_s: float  # simulated time (at least until every priority-3 workload is placed)
    instances: int  # small instances for the brute-force check


QUICK = S3Config(250, 1250, 31.25, 5, 0.5, 60, 300)
FULL = S3Config(1000, 5000, 125, 5, 0.5, 60, 2000)
SMOKE = S3Config(10, 40, 20, 5, 0.5, 4, 10)
CONFIGS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


@dataclass
class _Queued:
    workload: PendingWorkload
    arrived: float


def _p1_fleet(servers: int) -> SimStore:
    fleet = make_servers(servers)
    running = [
        RunningReplica(
            workload_id=f"p1-{s.id}-{d}",
            replica=0,
            server_id=s.id,
            priority=1,
            preemptible=True,
            resources=P1,
            gpu_allocation=((d, P1.gpu_milli),),
            started_at=0.0,
        )
        for s in fleet
        for d in range(8)
    ]
    return SimStore(fleet, running)


def simulate(cfg: S3Config, config: SchedulerConfig | None = None, seed: int = 5) -> dict[str, Any]:
    """Run the churn simulation with ``config`` (the shipped defaults when None)."""
    rng = random.Random(seed)
    store = _p1_fleet(cfg.servers)
    config = config or SchedulerConfig()
    cache = EngineCache()  # kept across cycles, as the product keeps it
    queue: dict[str, _Queued] = {}
    finish: dict[str, float] = {}  # workload -> simulated end time (p3 and p5)
    evictions: Counter[str] = Counter()
    preemptor_evictions: Counter[str] = Counter()
    waits_p5: list[float] = []
    placed = {1: 0, 3: 0, 5: 0}
    victims_per_preemption: list[int] = []
    thrash = 0
    engine_s = 0.0
    cycles = 0
    p3_made = p5_made = 0
    now = 0.0
    while now < cfg.horizon_s or placed[3] < cfg.p3:
        now += cfg.tick_s
        cycles += 1
        while p3_made < min(cfg.p3, int(now * cfg.p3_per_s)):
            at = p3_made / cfg.p3_per_s  # arrivals are spread evenly over the tick
            w = _pending(f"p3-{p3_made:06d}", 3, P3, at)
            queue[w.workload_id] = _Queued(w, at)
            p3_made += 1
        while now < cfg.horizon_s and p5_made < int(now * cfg.p5_per_s):
            at = p5_made / cfg.p5_per_s
            w = _pending(f"p5-{p5_made:06d}", 5, P5, at)
            queue[w.workload_id] = _Queued(w, at)
            p5_made += 1
        for wid, end in list(finish.items()):  # churn: finished work frees its room
            if end <= now:
                store.remove((wid, 0))
                del finish[wid]
        pending = [q.workload for q in queue.values()]
        started = time.perf_counter()
        result = schedule_cycle(store.snapshot(), pending, config, now, cache)
        engine_s += time.perf_counter() - started
        evicted_now: set[str] = set()
        for admission in result.admitted:
            entry = queue.pop(admission.workload_id)
            w = entry.workload
            if admission.victims:
                preemptor_evictions[w.workload_id] += 1
                thrash += preemptor_evictions[w.workload_id] > 1
                servers = {v.server_id for v in admission.victims}
                thrash += servers != {a.server_id for a in admission.assignments}
                victims_per_preemption.append(len(admission.victims))
                for victim in admission.victims:
                    gone = store.running[(victim.workload_id, victim.replica)]
                    evicted_now.add(victim.workload_id)
                    evictions[victim.workload_id] += 1
                    queue[victim.workload_id] = _Queued(_requeued(gone, now, evictions), now)
                    finish.pop(victim.workload_id, None)
            thrash += w.workload_id in evicted_now
            store.apply(admission, w, now)
            placed[w.priority] += 1
            if w.priority == 5:
                waits_p5.append(now - entry.arrived)
                finish[w.workload_id] = now + rng.uniform(10, 30)
            elif w.priority == 3:
                finish[w.workload_id] = now + rng.uniform(5, 20)
    total = sum(placed.values())
    repeat = [n for n in evictions.values() if n > 1]
    return {
        "placements": total,
        "placed_p3": placed[3],
        "placed_p5": placed[5],
        "readmitted_p1": placed[1],
        "p5_arrived": p5_made,
        "engine_seconds": engine_s,
        "placements_per_s": rate(total, engine_s),
        "cycles": cycles,
        "simulated_s": now,
        "preemptions": len(victims_per_preemption),
        "victims_mean": sum(victims_per_preemption) / max(1, len(victims_per_preemption)),
        "evicted_workloads": len(evictions),
        "repeat_evicted_workloads": len(repeat),
        "max_evictions_per_workload": max(evictions.values(), default=0),
        "thrash_cycles": thrash,
        "p5_wait_p50_s": percentile(waits_p5, 50),
        "p5_wait_p99_s": percentile(waits_p5, 99),
        "p5_wait_p99_cycles": percentile(waits_p5, 99) / cfg.tick_s,
    }


def _pending(wid: str, priority: int, resources: Resources, at: float) -> PendingWorkload:
    return PendingWorkload(wid, priority, at, resources, name=wid)


def _requeued(gone: RunningReplica, now: float, evictions: Counter[str]) -> PendingWorkload:
    backoff = min(BACKOFF_S * 2 ** (evictions[gone.workload_id] - 1), BACKOFF_MAX_S)
    w = _pending(gone.workload_id, gone.priority, gone.resources, now)
    return replace(w, backoff_until=now + backoff)


def minimality(instances: int, seed: int = 11) -> dict[str, object]:
    """Engine vs brute force on ``instances`` small random instances that need preemption
    (the search uncapped, like the property test, and capped as shipped)."""
    rng = random.Random(seed)
    now = 1000.0
    checked = minimal = minimal_capped = tried = 0
    cache = EngineCache()
    while checked < instances and tried < 50 * instances:
        tried += 1
        instance = random_instance(rng)
        best = optimum(instance)
        if best is None or best == (0, 0):
            continue  # nothing to preempt: fits nowhere, or fits without victims
        checked += 1
        for capped in (False, True):
            config = SchedulerConfig() if capped else SchedulerConfig(preemption_candidates=0)
            result = schedule_cycle(instance.snapshot, [instance.preemptor], config, now, cache)
            victims = [v for a in result.admitted for v in a.victims]
            by_id = {(r.workload_id, r.replica): r for r in instance.snapshot.running}
            top = max((by_id[(v.workload_id, v.replica)].priority for v in victims), default=0)
            ok = result.admitted and (top, len(victims)) == best
            if capped:
                minimal_capped += bool(ok)
            else:
                minimal += bool(ok)
    return {
        "instances": tried,
        "with_preemption": checked,
        "minimal": minimal,
        "minimal_pct": 100 * minimal / checked if checked else float("nan"),
        "minimal_capped_pct": 100 * minimal_capped / checked if checked else float("nan"),
    }


def run(mode: str, pg: PgDatabases | None = None) -> ScenarioResult:
    cfg = CONFIGS[mode]
    setup = (
        f"{cfg.servers:,} servers 90% full of priority 1; {cfg.p3:,} priority-3 placements "
        f"arriving at {cfg.p3_per_s:g}/s, priority-5 arrivals at {cfg.p5_per_s:g}/s needing 3 "
        f"victims each, for {cfg.horizon_s:g} s simulated, one cycle per {cfg.tick_s:g} s; "
        f"{cfg.instances:,} small instances needing preemption for the brute-force check"
    )
    if mode == "quick":
        setup += " (quick: a quarter of the servers and priority-3 workloads of `make bench-full`)"
    result = ScenarioResult("S3", "Preemption under churn", setup)
    shipped = simulate(cfg)
    uncapped = simulate(cfg, SchedulerConfig(preemption_candidates=0))
    check = minimality(cfg.instances)
    result.figures.update(shipped)
    result.figures["uncapped_search"] = uncapped
    result.figures.update({f"bruteforce_{k}": v for k, v in check.items()})
    result.figures["minimal_victims_pct"] = check["minimal_pct"]
    cap = SchedulerConfig().preemption_candidates
    table = Table(
        "Engine under preemption",
        ["figure", f"as shipped (search capped at {cap} servers)", "uncapped search"],
    )
    for label, fmt in (
        ("placements (p3 + p5 + re-admitted p1)",
         "{placements:,} ({placed_p3:,} + {placed_p5:,} + {readmitted_p1:,})"),
        ("placements/s of engine time", "{placements_per_s:,.0f}"),
        ("engine time / cycles / simulated time",
         "{engine_seconds:.2f} s / {cycles} / {simulated_s:.0f} s"),
        ("priority-5 arrived / placed / by preemption",
         "{p5_arrived} / {placed_p5} / {preemptions}"),
        ("mean victims per preemption", "{victims_mean:.2f}"),
        ("workloads evicted / twice or more / most of one",
         "{evicted_workloads} / {repeat_evicted_workloads} / {max_evictions_per_workload}"),
        ("thrash cycles", "{thrash_cycles}"),
        ("preemptor submit->running p50 / p99",
         "{p5_wait_p50_s:.1f} s / {p5_wait_p99_s:.1f} s ({p5_wait_p99_cycles:.0f} cycles)"),
    ):  # fmt: skip
        table.add(label, fmt.format(**shipped), fmt.format(**uncapped))
    bf = Table("Victims vs brute-force optimum (small random instances)", ["figure", "value"])
    bf.add("instances drawn / needing preemption",
           f"{check['instances']} / {check['with_preemption']}")  # fmt: skip
    bf.add("minimal (uncapped search)", f"{check['minimal_pct']:.1f}%")
    bf.add(f"minimal (as shipped: {cap}-server cap)", f"{check['minimal_capped_pct']:.1f}%")
    result.tables += [table, bf]
    return result
