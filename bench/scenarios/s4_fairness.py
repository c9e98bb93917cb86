"""S4 fairness: hierarchical quotas, borrowing, reclaim and DRF on the pure engine.

A shared simulated fleet of 8-GPU servers; every workload is one GPU (1 cpu, 4 GB), priority
3, preemptible, and runs 5-20 s (uniform, seeded). One engine cycle per simulated second,
applied by :class:`~bench.simstore.SimStore`; a reclaimed victim returns to the queue after
the product's backoff (10 s doubling). Teams keep a backlog of twice the fleet while bursting.

Phases (each a change the fleet must answer):

1. *two teams, equal weights*: team A bursts alone from t=0 (it borrows B's idle guarantee),
   team B bursts at t=60 (it reclaims its guarantee); until t=120.
2. *four teams, weights 1:1:2:4*, guarantees a quarter of the fleet split equally (the rest
   lent by weight): A bursts at t=120, B at t=150, C at t=180, D at t=210; until t=300.

Figures: Jain's fairness index over the teams with demand of ``used / fair share`` (the
share :class:`~gpuyard.scheduler.fairshare.FairShareTree` gives each: guarantees, then idle
capacity by weight; 1 when every team holds exactly its share) sampled every second, and
the seconds after each change until it is >= 0.95 and stays there until the next change;
reclaim latency (a team's burst until it holds its guarantee; 0 = in the cycle of the
burst itself); GPU utilisation while a team borrows (seconds in which some team holds
more than its guarantee and work waits).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any

from bench.fleet import make_servers, res
from bench.pg import PgDatabases
from bench.result import ScenarioResult, Table
from bench.simstore import SimStore
from bench.stats import percentile
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.fairshare import FairShareTree, QueueNode, jain_index
from gpuyard.scheduler.snapshot import PendingWorkload, SchedulerConfig

JOB = res(1, 4, 1)
BACKOFF_S, BACKOFF_MAX_S = 10.0, 600.0
JAIN_TARGET = 0.95


@dataclass(frozen=True)
class S4Config:
    servers: int
    seed: int = 4


QUICK = S4Config(32)
FULL = S4Config(128)
SMOKE = S4Config(4)
CONFIGS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float
    #: team -> (weight, guarantee in GPUs as a fraction of the fleet, burst start)
    teams: dict[str, tuple[int, float, float]]


PHASES = (
    Phase("two teams, equal weights", 0, 120, {"A": (1, 0.5, 0), "B": (1, 0.5, 60)}),
    Phase(
        "four teams, weights 1:1:2:4",
        120,
        300,
        {
            "A": (1, 0.0625, 120),
            "B": (1, 0.0625, 150),
            "C": (2, 0.0625, 180),
            "D": (4, 0.0625, 210),
        },
    ),
)


def simulate(cfg: S4Config) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    store = SimStore(make_servers(cfg.servers))
    fleet_gpus = cfg.servers * 8
    capacity = Resources(gpu_milli=fleet_gpus * 1000)
    config = SchedulerConfig()
    cache = EngineCache()
    queue: dict[str, PendingWorkload] = {}
    finish: dict[str, float] = {}
    evictions: dict[str, int] = {}
    made = 0
    engine_s = 0.0
    samples: list[dict[str, Any]] = []
    reclaim_latency: dict[str, float] = {}
    changes: list[tuple[str, float, float]] = []  # (label, at, phase end)
    reclaims = victims = 0
    for phase in PHASES:
        bursts = sorted({b for _, _, b in phase.teams.values()})
        for team, (_, _, burst) in phase.teams.items():
            # A change is judged until the next one (or the phase's end).
            until = min([b for b in bursts if b > burst] + [phase.end])
            changes.append((f"{phase.name}: {team} bursts", burst, until))
    for phase in PHASES:
        nodes = {
            t: QueueNode(t, guarantee=Resources(gpu_milli=round(g * fleet_gpus) * 1000), weight=w)
            for t, (w, g, _) in phase.teams.items()
        }
        # A phase starts from an empty fleet and queue: the teams of the last one left.
        for key in list(store.running):
            store.remove(key)
        queue.clear()
        finish.clear()
        now = phase.start
        while now < phase.end:
            now += 1.0
            for wid, end in list(finish.items()):
                if end <= now:
                    store.remove((wid, 0))
                    del finish[wid]
            for team, (_, _, burst) in phase.teams.items():
                if now < burst:
                    continue
                backlog = sum(1 for w in queue.values() if w.team_id == team)
                while backlog < 2 * fleet_gpus:  # keep the burst going
                    wid = f"{team}-{made:07d}"
                    made += 1
                    queue[wid] = PendingWorkload(wid, 3, now, JOB, name=wid, team_id=team)
                    backlog += 1
            snapshot = replace(store.snapshot(), teams=nodes)
            pending = list(queue.values())
            started = time.perf_counter()
            result = schedule_cycle(snapshot, pending, config, now, cache)
            engine_s += time.perf_counter() - started
            for admission in result.admitted:
                w = queue.pop(admission.workload_id)
                if admission.lender is not None:
                    reclaims += 1
                for victim in admission.victims:
                    victims += 1
                    gone = store.running[(victim.workload_id, victim.replica)]
                    finish.pop(victim.workload_id, None)
                    evictions[victim.workload_id] = evictions.get(victim.workload_id, 0) + 1
                    back = min(BACKOFF_S * 2 ** (evictions[victim.workload_id] - 1), BACKOFF_MAX_S)
                    queue[victim.workload_id] = PendingWorkload(
                        gone.workload_id, 3, now, JOB, name=gone.workload_id,
                        team_id=gone.team_id, backoff_until=now + back,
                    )  # fmt: skip
                store.apply(admission, w, now)
                finish[w.workload_id] = now + rng.uniform(5, 20)
            used = {t: 0 for t in nodes}
            for replica in store.running.values():
                used[replica.team_id or ""] = used.get(replica.team_id or "", 0) + 1
            waiting = {t: 0 for t in nodes}
            for w in queue.values():
                waiting[w.team_id or ""] = waiting.get(w.team_id or "", 0) + 1
            tree = FairShareTree(
                [
                    replace(
                        n,
                        used=Resources(gpu_milli=used[t] * 1000),
                        pending=Resources(gpu_milli=waiting[t] * 1000),
                    )
                    for t, n in nodes.items()
                ],
                capacity,
            )
            active = [t for t in nodes if used[t] + waiting[t] > 0]
            ratios = [used[t] * 1000 / tree.share(t).fair_share[3] for t in active
                      if tree.share(t).fair_share[3] > 0]  # fmt: skip
            borrowing = any(used[t] * 1000 > nodes[t].guarantee.gpu_milli for t in nodes)
            samples.append(
                {
                    "t": now,
                    "jain": jain_index(ratios),
                    "util": sum(used.values()) / fleet_gpus,
                    "borrowing_with_waiting": borrowing and sum(waiting.values()) > 0,
                    "used": dict(used),
                }
            )
            for team, (_, _, burst) in phase.teams.items():
                team_label = f"{phase.name}: {team}"
                guarantee = nodes[team].guarantee.gpu_milli // 1000
                if now >= burst and team_label not in reclaim_latency and used[team] >= guarantee:
                    reclaim_latency[team_label] = now - burst
    convergence: list[tuple[str, float | None]] = []
    for label, at, end in changes:
        window = [s for s in samples if at < s["t"] < end]
        settled: float | None = None
        for i, s in enumerate(window):
            if all(x["jain"] >= JAIN_TARGET for x in window[i:]):
                settled = s["t"] - at
                break
        convergence.append((label, settled))
    util_borrowing = [s["util"] for s in samples if s["borrowing_with_waiting"]]
    settled_all = [c for _, c in convergence]
    worst = (
        None
        if any(c is None for c in settled_all)
        else max(c for c in settled_all if c is not None)
    )
    return {
        "fleet_gpus": fleet_gpus,
        "engine_seconds": engine_s,
        "cycles": len(samples),
        "reclaims": reclaims,
        "victims": victims,
        "jain_settle_s": convergence,
        "jain_settle_worst_s": worst if worst is not None else float("inf"),
        "jain_final_mean": sum(s["jain"] for s in samples[-30:]) / max(1, len(samples[-30:])),
        "reclaim_latency_s": reclaim_latency,
        "reclaim_latency_max_s": max(reclaim_latency.values(), default=float("nan")),
        "gpu_util_borrowing_pct": 100 * sum(util_borrowing) / max(1, len(util_borrowing)),
        "gpu_util_borrowing_p5_pct": 100 * percentile(util_borrowing, 5) if util_borrowing else 0,
        "samples": [(s["t"], round(s["jain"], 4), round(s["util"], 4)) for s in samples],
    }


def run(mode: str, pg: PgDatabases | None = None) -> ScenarioResult:
    cfg = CONFIGS[mode]
    setup = (
        f"{cfg.servers} servers x 8 GPUs ({cfg.servers * 8} GPUs); 1-GPU workloads of 5-20 s at "
        "priority 3, a backlog of twice the fleet per bursting team; one cycle per simulated "
        "second; phase 1: 2 teams, equal weights and guarantees (B bursts 60 s after A); "
        "phase 2: 4 teams, weights 1:1:2:4, guarantees a quarter of the fleet in all "
        "(bursts 30 s apart)"
    )
    if mode == "quick":
        setup += " (quick: a quarter of the servers of `make bench-full`)"
    result = ScenarioResult("S4", "Fairness: quotas, borrowing, reclaim, DRF", setup)
    figures = simulate(cfg)
    result.figures.update(figures)
    settle = Table(
        "Jain's index of used / fair share after each change",
        ["change", "seconds to >= 0.95 for good"],
    )
    for label, seconds in figures["jain_settle_s"]:
        settle.add(label, "never" if seconds is None else f"{seconds:g}")
    reclaim = Table(
        "Reclaim latency (burst until the team holds its guarantee)", ["team", "seconds"]
    )
    for label, seconds in figures["reclaim_latency_s"].items():
        reclaim.add(label, f"{seconds:g}")
    summary = Table("Summary", ["figure", "value"])
    util = figures["gpu_util_borrowing_pct"], figures["gpu_util_borrowing_p5_pct"]
    summary.add(
        "GPU utilisation while a team borrows and work waits (mean / p5)",
        f"{util[0]:.1f}% / {util[1]:.1f}%",
    )
    summary.add("reclaim preemptions / victims", f"{figures['reclaims']} / {figures['victims']}")
    summary.add("engine time / cycles", f"{figures['engine_seconds']:.2f} s / {figures['cycles']}")
    result.tables += [settle, reclaim, summary]
    result.notes.append(
        "Above the guarantees, shares converge through churn only (freed GPUs go to the team "
        "furthest below its fair share, teams interleaved by progressive filling); reclaim "
        "preempts only up to a guarantee."
    )
    return result
