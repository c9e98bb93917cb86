"""S5 GPU trace replay: the Alibaba openb trace (Weng et al., "Beware of Fragmentation",
USENIX ATC 2023; data and README in bench/data/alibaba-openb/).

1,213 GPU servers (a stride keeps every n-th in quick mode); the pods arrive in creation
order, then resampled uniformly from the trace (seeded) to inflate the workload, until the
arrived GPU demand reaches the last checkpoint. The figure is the share of the cluster's GPUs
left unallocated when the arrived demand reaches 100% of the capacity (more checkpoints are
recorded for the curve). ``make bench-full`` also runs the paper's own order: the pods
shuffled (seeds 42, 43, 44) and inflated to 130%. Quick and full modes also replay
model-constrained variants of the trace (:func:`bench.trace.constrained_trace`: a third of
the GPU pods pinned to one model, seeds 1-3), in creation order and shuffled, against the
FGD artifact's published 38-57% fewer unallocated GPUs than best-fit.

Policies: ``pack`` (our default profile, default config: Fragmentation Gradient Descent with
the workload mix the engine learns each cycle from the running and pending replicas, plus
the GPU stranded behind CPU/RAM; ``scheduler/plugins/fgd.py``), ``binpack`` (the former
default: best-fit packing of devices), FGD exactly as the paper measures fragmentation
(no stranding term) given the trace's pod-shape popularity as the paper does (``fgd paper +
trace mix``) or learning the mix per cycle (``fgd paper + learned mix``), and the four
baselines. The two paper-measure variants are registered by the bench only.

Issue 21 adds the trace as the API's users would submit it (``bench/share_variants.py``):
shares rounded up to tenths (the API before), to 0.05 (the API now), and 0.05 shares that
also reserve GPU memory; each in creation order and shuffled (seeds 42, 43, 44), the
default profile against best-fit (the baselines, as the engine, use only devices with a
share's GPU memory free). A coarser step reserves more than the pods use (rounding up),
which lowers its "unallocated" figure; the notes give that overhead per step.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, replace
from functools import partial
from statistics import mean

from bench.baselines import all_baselines
from bench.pg import PgDatabases
from bench.replay import Replay, checkpoints, replay_baseline, replay_engine
from bench.result import ScenarioResult, Table
from bench.share_variants import VARIANTS, rounding_overhead, variant
from bench.trace import Trace, TracePod, as_pending, constrained_trace, load_trace
from gpuyard.scheduler import registry
from gpuyard.scheduler.plugins.fgd import FgdScorer, WorkloadMix
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload

#: Bench-only profiles: FGD with the paper's fragmentation measure (no stranding term).
PAPER_TRACE_MIX = "fgd-paper-trace-mix"
PAPER_LEARNED_MIX = "fgd-paper-learned-mix"


@dataclass(frozen=True)
class S5Config:
    node_stride: int
    fractions: tuple[float, ...]  # checkpoints; 1.0 is the headline
    shuffled_seeds: tuple[int, ...]  # extra runs in the paper's order (shuffled)
    shuffled_to: float  # the paper inflates to 130%
    variant_seeds: tuple[int, ...] = ()  # shuffled runs of the share/memory variants
    #: Seeds of the model-constrained traces (:func:`bench.trace.constrained_trace`), each
    #: replayed in creation order and shuffled.
    constrained_seeds: tuple[int, ...] = ()


#: Share of GPU pods a model-constrained trace pins to one model ("about a third").
CONSTRAINED_SHARE = 1 / 3
#: What the FGD artifact publishes as its reduction of unallocated GPUs vs best-fit (%).
FGD_PUBLISHED_FEWER_PCT = (38.0, 57.0)
#: The policies replayed on the constrained traces (the rest add time, not insight).
CONSTRAINED_POLICIES = ("pack", "binpack", "fgd paper + trace mix", "best-fit")

QUICK = S5Config(
    2, (0.8, 0.9, 1.0), (), 1.0, variant_seeds=(42, 43, 44), constrained_seeds=(1, 2, 3)
)
FULL = S5Config(
    1,
    (0.8, 0.9, 1.0, 1.1, 1.2, 1.3),
    (42, 43, 44),
    1.3,
    variant_seeds=(42, 43, 44),
    constrained_seeds=(1, 2, 3),
)
SMOKE = S5Config(40, (0.5, 1.0), (), 1.0, constrained_seeds=(1,))
CONFIGS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}


def trace_mix(trace: Trace) -> WorkloadMix:
    """The trace's pod shapes weighted by how often they occur (the paper's target workload)."""
    counts = collections.Counter((p.resources, p.gpu_model) for p in trace.pods)
    return WorkloadMix([(res, model, float(n)) for (res, model), n in counts.items()])


def register_paper_profiles(mix: WorkloadMix) -> tuple[str, str]:
    """Add the paper-measure FGD profiles (``mix`` given, and learned) to this process's
    registry; returns their names."""
    for name, scorer in (
        (PAPER_TRACE_MIX, partial(FgdScorer, mix, stranding=False, model_reserve=False)),
        (PAPER_LEARNED_MIX, partial(FgdScorer, None, stranding=False, model_reserve=False)),
    ):
        registry.REGISTRY[name] = scorer
        registry.PROFILES[name] = replace(
            registry.PROFILES["fgd"], scorers=(name, "most_allocated")
        )
    return PAPER_TRACE_MIX, PAPER_LEARNED_MIX


def arrival_sequence(trace: Trace, up_to: float, seed: int, shuffle: bool) -> list[PendingWorkload]:
    """Pods (in creation order, or shuffled) then resampled ones, until the arrived GPU
    demand reaches ``up_to`` times the capacity."""
    rng = random.Random(seed)
    first: list[TracePod] = list(trace.pods)
    if shuffle:
        rng.shuffle(first)
    out: list[PendingWorkload] = []
    demand, goal = 0, up_to * trace.gpu_capacity_milli
    while demand < goal:
        pod = first[len(out)] if len(out) < len(first) else rng.choice(trace.pods)
        out.append(as_pending(pod, len(out)))
        demand += pod.resources.gpu_milli
    return out


def run_policies(
    trace: Trace,
    arrivals: list[PendingWorkload],
    fractions: tuple[float, ...],
    only: tuple[str, ...] | None = None,
) -> dict[str, Replay]:
    """Replay ``arrivals`` for each policy (``only``: just these, by report name)."""
    snapshot = ClusterSnapshot(servers=trace.servers)
    marks = checkpoints(arrivals, trace.gpu_capacity_milli, fractions)
    engine = {
        "pack": "pack",
        "binpack": "binpack",
        "fgd paper + trace mix": PAPER_TRACE_MIX,
        "fgd paper + learned mix": PAPER_LEARNED_MIX,
    }
    out = {
        name: replay_engine(profile, snapshot, arrivals, marks)
        for name, profile in engine.items()
        if only is None or name in only
    }
    for choice in all_baselines(seed=7):
        if only is None or choice.name in only:
            out[choice.name] = replay_baseline(choice, snapshot, arrivals, marks)
    return out


def _fewer(runs: dict[str, Replay], name: str) -> float:
    """How many fewer GPUs (%) ``name`` leaves unallocated at 100% than best-fit."""
    best_fit = runs["best-fit"].unallocated[1.0]
    at100 = runs[name].unallocated[1.0]
    return (best_fit - at100) / best_fit * 100 if best_fit else float("nan")


def run_constrained(result: ScenarioResult, trace: Trace, cfg: S5Config) -> None:
    """Replay the model-constrained variants of ``trace`` (one per seed) in creation order
    and shuffled; report each one's reduction of unallocated GPUs vs best-fit."""
    columns = ["trace", "order", *(f"{name} @100%" for name in CONSTRAINED_POLICIES),
               "pack vs best-fit", "fgd paper + trace mix vs best-fit"]  # fmt: skip
    table = Table(
        f"Model-constrained traces ({CONSTRAINED_SHARE:.0%} of GPU pods pinned to one model): "
        "share of GPUs left unallocated",
        columns,
    )
    fewer: dict[str, list[float]] = {"creation": [], "shuffled": []}
    for seed in cfg.constrained_seeds:
        pinned = constrained_trace(trace, CONSTRAINED_SHARE, seed)
        register_paper_profiles(trace_mix(pinned))
        for order, shuffle in (("creation", False), ("shuffled", True)):
            up_to = cfg.shuffled_to if shuffle else max(cfg.fractions)
            arrivals = arrival_sequence(pinned, up_to, seed, shuffle)
            runs = run_policies(pinned, arrivals, cfg.fractions, CONSTRAINED_POLICIES)
            pack_fewer = _fewer(runs, "pack")
            fewer[order].append(pack_fewer)
            result.figures[f"constrained_{order}_seed{seed}"] = {
                "unallocated_pct": {n: runs[n].unallocated[1.0] * 100 for n in runs},
                "pack_fewer_than_best_fit_pct": pack_fewer,
                "fgd_trace_mix_fewer_than_best_fit_pct": _fewer(runs, "fgd paper + trace mix"),
            }
            table.add(
                f"seed {seed}",
                order,
                *(f"{runs[n].unallocated[1.0] * 100:.2f}%" for n in CONSTRAINED_POLICIES),
                f"{pack_fewer:+.1f}% fewer",
                f"{_fewer(runs, 'fgd paper + trace mix'):+.1f}% fewer",
            )
    result.tables.append(table)
    for order, values in fewer.items():
        if values:
            result.figures[f"constrained_{order}_min_fewer_vs_best_fit_pct"] = min(values)
    low, high = FGD_PUBLISHED_FEWER_PCT
    result.notes.append(
        f"Model-constrained traces: the FGD artifact publishes {low:.0f}-{high:.0f}% fewer "
        "unallocated GPUs than best-fit; the default profile's worst trace here: "
        + ", ".join(f"{o} order {min(v):.1f}%" for o, v in fewer.items() if v)
    )


def run(mode: str, pg: PgDatabases | None = None) -> ScenarioResult:
    """Replay the trace for every policy (``pg`` is unused: no database here)."""
    cfg = CONFIGS[mode]
    trace = load_trace(cfg.node_stride)
    register_paper_profiles(trace_mix(trace))
    gpus = trace.gpu_capacity_milli // 1000
    setup = (
        f"{len(trace.servers):,} servers / {gpus:,} GPUs"
        + (f" (1 node in {cfg.node_stride} of 1,213 in quick mode)" if cfg.node_stride > 1
           else "")
        + f"; {len(trace.pods):,} trace pods in creation order, inflated by resampling"
    )  # fmt: skip
    result = ScenarioResult("S5", "Alibaba openb GPU trace replay", setup)
    arrivals = arrival_sequence(trace, max(cfg.fractions), seed=42, shuffle=False)
    runs = run_policies(trace, arrivals, cfg.fractions)
    _report(result, "creation order", runs, cfg.fractions, headline=True)
    if cfg.shuffled_seeds:
        shuffled = [
            run_policies(trace, arrival_sequence(trace, cfg.shuffled_to, s, True), cfg.fractions)
            for s in cfg.shuffled_seeds
        ]
        averaged = {
            name: Replay(
                name,
                {f: mean(r[name].unallocated[f] for r in shuffled) for f in cfg.fractions},
                round(mean(r[name].placed for r in shuffled)),
                round(mean(r[name].arrived for r in shuffled)),
                mean(r[name].seconds for r in shuffled),
            )
            for name in shuffled[0]
        }
        label = f"shuffled, mean of seeds {', '.join(map(str, cfg.shuffled_seeds))}"
        _report(result, label, averaged, cfg.fractions, headline=False)
    _report_variants(result, trace, cfg)
    if trace.multi_model_pods:
        result.notes.append(f"{trace.multi_model_pods} pods name several GPU models; any "
                            "of them will do.")  # fmt: skip
    if cfg.constrained_seeds:
        run_constrained(result, trace, cfg)
    return result


def run_variant(trace: Trace, arrivals: list[PendingWorkload]) -> dict[str, float]:
    """Unallocated GPU share at 100% demand: the default profile, binpack and the best-fit
    baseline (which, as every baseline, uses only devices with a share's memory free)."""
    snapshot = ClusterSnapshot(servers=trace.servers)
    marks = checkpoints(arrivals, trace.gpu_capacity_milli, (1.0,))
    best_fit = next(c for c in all_baselines() if c.name == "best-fit")
    return {
        "pack": replay_engine("pack", snapshot, arrivals, marks).unallocated[1.0],
        "binpack": replay_engine("binpack", snapshot, arrivals, marks).unallocated[1.0],
        "best-fit": replay_baseline(best_fit, snapshot, arrivals, marks).unallocated[1.0],
    }


def _report_variants(result: ScenarioResult, trace: Trace, cfg: S5Config) -> None:
    """The trace as the API's users submit it (share steps, GPU memory): one table."""
    orders: list[tuple[str, int, bool]] = [("creation order", 42, False)]
    orders += [(f"shuffled, seed {s}", s, True) for s in cfg.variant_seeds]
    table = Table(
        "Shares and GPU memory as the API takes them (unallocated GPUs at 100% demand)",
        ["trace variant", "order", "pack", "binpack", "best-fit (baseline)",
         "pack vs best-fit"],
    )  # fmt: skip
    figures: dict[str, dict[str, float]] = {}
    for name in VARIANTS:
        shaped = variant(trace, name)
        reductions = []
        for label, seed, shuffle in orders:
            arrivals = arrival_sequence(shaped, 1.0, seed, shuffle)
            got = run_variant(shaped, arrivals)
            reference = got["best-fit"]
            fewer = (reference - got["pack"]) / reference * 100 if reference else float("nan")
            reductions.append(fewer)
            figures[f"{name} / {label}"] = {k: v * 100 for k, v in got.items()} | {
                "fewer_pct": fewer
            }
            table.add(
                name,
                label,
                f"{got['pack'] * 100:.2f}%",
                f"{got['binpack'] * 100:.2f}%",
                f"{got['best-fit'] * 100:.2f}%",
                f"{fewer:+.1f}% fewer",
            )
        figures[f"{name} / mean"] = {"fewer_pct": mean(reductions)}
    result.figures["share_variants"] = figures
    result.tables.append(table)
    result.notes.append(
        "Rounding each share up reserves more GPU than the pods use: "
        f"{rounding_overhead(trace, 100):.1%} more for the shares at 0.1 steps, "
        f"{rounding_overhead(trace, 50):.1%} at 0.05 steps; so the coarser steps' lower "
        "unallocated figures partly count that waste as allocated."
    )


def _report(
    result: ScenarioResult,
    label: str,
    runs: dict[str, Replay],
    fractions: tuple[float, ...],
    headline: bool,
) -> None:
    best_fit = runs["best-fit"].unallocated[1.0]
    columns = ["policy", *(f"unalloc. @{f:.0%}" for f in fractions), "vs best-fit @100%",
               "pods placed", "replay time"]  # fmt: skip
    table = Table(f"Share of GPUs left unallocated ({label})", columns)
    key = "creation" if headline else "shuffled"
    for name, replay in runs.items():
        at100 = replay.unallocated[1.0]
        fewer = (best_fit - at100) / best_fit * 100 if best_fit else float("nan")
        baseline = name in {"first-fit", "best-fit", "random-fit", "dot-product"}
        figures = {
            "unallocated_pct": {f"{f:.2f}": replay.unallocated[f] * 100 for f in fractions},
            "fewer_than_best_fit_pct": fewer,
            "placed": replay.placed,
            "arrived": replay.arrived,
            "seconds": replay.seconds,
        }
        if baseline:
            result.baselines.setdefault(name, {})[key] = figures
        else:
            result.figures[f"{key}_{name}"] = figures
        table.add(
            f"{name} (baseline)" if baseline else name,
            *(f"{replay.unallocated[f] * 100:.2f}%" for f in fractions),
            "-" if name == "best-fit" else f"{fewer:+.1f}% fewer",
            f"{replay.placed:,} of {replay.arrived:,}",
            f"{replay.seconds:.1f} s",
        )
    result.tables.append(table)
    if headline:
        result.figures["fewer_unallocated_vs_best_fit_pct"] = result.figures["creation_pack"][
            "fewer_than_best_fit_pct"
        ]
        result.figures["fgd_trace_mix_fewer_vs_best_fit_pct"] = result.figures[
            "creation_fgd paper + trace mix"
        ]["fewer_than_best_fit_pct"]
