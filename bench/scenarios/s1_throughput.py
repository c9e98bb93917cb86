"""S1 placement throughput (kube-scheduler's scheduler_perf analogue): the core and end to end.

Core: one engine cycle (``schedule_cycle``) over 5,000 servers (64 cpu, 512 GB, 8 GPUs) with
1,000 replicas already running places N pending workloads. Each case runs in a fresh
process (so its peak RSS is its own; it includes the interpreter and imports, about 150 MiB):
first an uninstrumented cycle for placements/s, then an instrumented one for the
per-workload decision time (:mod:`bench.instrument`), an empty cycle for the fixed cost of
building the working state, and a cycle under ``tracemalloc`` for the Python heap that the
inputs and the cycle take (peak, with the inputs' share). The baselines place the same
pending list over the same snapshot, naively (every server, every workload), for a fixed time
budget; their rate is measured on the prefix they got through.

End to end: :mod:`bench.scenarios.s1_end_to_end`.
"""

from __future__ import annotations

import multiprocessing
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.baselines import all_baselines, place_all
from bench.fleet import gpu_mix, make_servers, pending, random_running, res, with_running
from bench.instrument import timed_decisions
from bench.pg import PgDatabases
from bench.result import ScenarioResult, Table
from bench.scenarios import s1_end_to_end
from bench.stats import peak_rss_mib, percentile, rate, ratio
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, SchedulerConfig


@dataclass(frozen=True)
class S1Config:
    servers: int
    running: int
    basic: tuple[int, ...]  # sizes of the 1 cpu / 1 GB cases
    gpu: int  # size of the 1/2/4/8-GPU case
    baseline_seconds: float  # time budget per baseline and case
    e2e: s1_end_to_end.E2EConfig


QUICK = S1Config(5000, 1000, (10_000,), 5000, 0.75, s1_end_to_end.QUICK)
FULL = S1Config(5000, 1000, (10_000, 50_000), 5000, 5.0, s1_end_to_end.FULL)
SMOKE = S1Config(20, 5, (30,), 10, 0.05, s1_end_to_end.SMOKE)
CONFIGS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


def case_inputs(
    cfg: S1Config, kind: str, count: int
) -> tuple[ClusterSnapshot, list[PendingWorkload]]:
    """The snapshot and pending list of one case (deterministic)."""
    servers = make_servers(cfg.servers)
    snapshot = with_running(servers, random_running(servers, cfg.running, seed=1))
    shapes = [res(1, 1)] * count if kind == "basic" else gpu_mix(count, seed=2)
    return snapshot, pending(kind, shapes, start=10.0)


def core_case(cfg: S1Config, kind: str, count: int) -> dict[str, Any]:
    """Run one core case in this process; returns its figures."""
    rss_before = peak_rss_mib()
    snapshot, queue = case_inputs(cfg, kind, count)
    config = SchedulerConfig()
    # One engine cache for the case, as the product keeps one across cycles.
    cache = EngineCache()
    now = 1000.0
    started = time.perf_counter()
    schedule_cycle(snapshot, [], config, now, cache)
    setup_s = time.perf_counter() - started
    started = time.perf_counter()
    result = schedule_cycle(snapshot, queue, config, now, cache)
    seconds = time.perf_counter() - started
    placed = sum(len(a.assignments) for a in result.admitted)
    with timed_decisions() as samples:
        schedule_cycle(snapshot, queue, config, now, cache)
    del snapshot, queue, result
    tracemalloc.start()
    snapshot, queue = case_inputs(cfg, kind, count)
    inputs_mib = tracemalloc.get_traced_memory()[0] / 2**20
    schedule_cycle(snapshot, queue, config, now, cache)
    traced_peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "placed": placed,
        "pending": count,
        "seconds": seconds,
        "per_s": rate(placed, seconds),
        "setup_ms": setup_s * 1000,
        "p50_us": percentile(samples, 50) * 1e6,
        "p99_us": percentile(samples, 99) * 1e6,
        "peak_rss_mib": peak_rss_mib(),
        "rss_before_mib": rss_before,
        "inputs_mib": inputs_mib,
        "traced_peak_mib": traced_peak_mib,
    }


def baseline_case(cfg: S1Config, kind: str, count: int) -> dict[str, dict[str, Any]]:
    snapshot, queue = case_inputs(cfg, kind, count)
    out = {}
    for choice in all_baselines(seed=3):
        run = place_all(choice, snapshot, queue, max_seconds=cfg.baseline_seconds)
        out[choice.name] = {
            "placed": len(run.placed),
            "considered": run.considered,
            "seconds": run.seconds,
            "per_s": run.rate,
        }
    return out


def _in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh interpreter, so peak RSS is the case's own."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(fn, args)
    return result


def run(mode: str, pg: PgDatabases | None) -> ScenarioResult:
    cfg = CONFIGS[mode]
    cases = [("basic", n) for n in cfg.basic] + [("gpu", cfg.gpu)]
    setup = (
        f"{cfg.servers:,} servers (64 cpu, 512 GB, 8 GPUs), {cfg.running:,} replicas running; "
        + ", ".join(f"{n:,} x {'1 cpu/1 GB' if k == 'basic' else '1/2/4/8 GPUs'}" for k, n in cases)
    )
    e2e = cfg.e2e
    setup += f"; end to end {e2e.basic:,} x 1 cpu/1 GB and {e2e.gpu:,} GPU workloads"
    if mode == "quick":
        setup += (" (quick: the 50,000 core case and 10,000 / 5,000 end to end run in "
                  "`make bench-full`)")  # fmt: skip
    result = ScenarioResult("S1", "Placement throughput", setup)
    core = Table(
        "Core: one schedule_cycle over the whole pending list",
        ["case", "placed", "placements/s", "p50 decision", "p99 decision", "cycle setup",
         "process peak RSS", "heap peak of the cycle"],
    )  # fmt: skip
    vs = Table(
        "Core vs baselines (same snapshot and queue; baselines timed on the prefix they place "
        f"in {cfg.baseline_seconds:g} s)",
        ["case", "policy", "placed", "placements/s", "ours / baseline"],
    )
    for kind, count in cases:
        name = f"{kind}_{count}"
        ours = (
            _in_child(core_case, cfg, kind, count)
            if mode != "smoke"
            else core_case(cfg, kind, count)
        )
        result.figures[f"core_{name}"] = ours
        core.add(
            f"{count:,} {kind}", ours["placed"], ours["per_s"], f"{ours['p50_us']:.0f} us",
            f"{ours['p99_us']:.0f} us", f"{ours['setup_ms']:.0f} ms",
            f"{ours['peak_rss_mib']:.0f} MiB", f"{ours['traced_peak_mib']:.0f} MiB "
            f"({ours['inputs_mib']:.0f} inputs)",
        )  # fmt: skip
        vs.add(f"{count:,} {kind}", "gpuyard (pack)", ours["placed"], ours["per_s"], 1.0)
        for policy, figures in baseline_case(cfg, kind, count).items():
            result.baselines.setdefault(policy, {})[f"core_{name}"] = figures
            vs.add(
                "",
                f"{policy} (baseline)",
                f"{figures['placed']:,} of {count:,}",
                figures["per_s"],
                ratio(ours["per_s"], figures["per_s"]),
            )
    result.tables += [core, vs]
    s1_end_to_end.run(cfg.e2e, result, pg)
    return result
