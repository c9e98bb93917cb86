"""Scorer ``fgd``: Fragmentation Gradient Descent (Weng et al., USENIX ATC 2023).

Idea: a server's free GPU capacity is only worth something if the workloads that will
arrive can use it. Given a *workload mix* (the request shapes expected, with their
popularity), the fragmentation of a server is the free GPU milli that a task drawn from the
mix could **not** use there, averaged over the mix:

- a task that needs no GPU, cannot reach a device of its model, or does not fit the server's
  free CPU, RAM or GPU at all, can use none of the free GPU: all of it is a fragment for it
  (so GPUs stranded behind exhausted CPU or RAM count as fragments, as in the paper);
- a task that fits can use, of the devices of its model, those with at least
  ``min(request, 1000)`` milli free (a share needs that much room on one device; a whole-GPU
  task needs entirely free devices); the rest of the free GPU is a fragment for it.

That measure looks one task ahead: a server with 8 free GPUs and CPU for 5 more tasks is
not fragmented by it, yet 3 of its GPUs will be stranded once those 5 tasks arrived. So the
scorer adds a second term in the same unit, the free GPU milli the mix's GPU tasks could
not reach before the server's free CPU or RAM runs out (:meth:`FgdScorer.stranded`: free
GPU minus free CPU over the mix's CPU per GPU milli, likewise for RAM, never below 0). On
the Alibaba trace most of what FGD leaves unallocated without it is whole GPUs behind
exhausted CPU (bench/analysis.md, S5); ``stranding=False`` gives the paper's measure alone.

``fgd`` scores a placement by how much it *reduces* the server's expected unusable GPU
(fragmentation plus stranding; before minus after, in GPU milli; higher is better), so each
task goes where it adds the least: the gradient-descent step of the paper. This covers work
without a GPU too: taking CPU or RAM on a server whose free GPUs then no longer fit the
mix's tasks, or can no longer all be fed, scores below taking it where no GPU is stranded.

Models: a task of the mix pinned to a model set can use only those devices, so the measure
sees GPU of another model as a fragment for it; but taking a whole free GPU leaves no
fragment on any model, so the measure alone lets work that may run anywhere fill the model
that pinned work needs. The *model reserve* (:meth:`FgdScorer.reserve`) charges GPU taken
from a model by that model's pressure (:meth:`WorkloadMix.model_pressure`), over the free
GPU per model as it is after the cycle's placements so far (``CycleState.gpu_tally``). It
reads the whole fleet, not one server, so it is a ``CycleTerm``: the placer adds it fresh at
each comparison instead of caching it with the server's score.

Where the mix comes from: the paper gives the scheduler the trace's pod-shape popularity.
Built without a mix, the scorer learns it once per cycle (:meth:`FgdScorer.prepare`, the
engine's PreScore step) from the replicas running in the cycle's snapshot plus the cycle's
pending queue (:func:`estimate_mix`), so the target workload follows what the cluster really
runs. A deployment that knows its workload (or a benchmark replaying a trace, as the paper
does) can still build the scorer with a fixed mix. The scorer is pure; the state-keyed memo
below only caches a function of its arguments.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.framework import CycleTerm, PreScore, Scorer, Term
from gpuyard.scheduler.gpu_match import ModelKey, device_matches, model_key
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import GpuAllocation
from gpuyard.scheduler.state import CycleState, GpuTally, NodeState, alloc_key

#: Entries kept in the fragmentation memo before it starts over (bounds memory).
MEMO_LIMIT = 200_000

#: Highest model pressure (pinned demand share over free share) the reserve term counts.
PRESSURE_CAP = 4.0
#: GPU milli of expected unusable GPU charged per milli taken at pressure 1. Above 1 so the
#: model reserve outweighs a within-model fragmentation difference (tuned on the S5
#: model-constrained traces: 1 -> 18-28% fewer unallocated than best-fit, 8 -> 33-38%; since
#: the pressure follows the cycle's placements, 4 and 16 do as well as 8, within noise).
RESERVE_WEIGHT = 8.0

#: A request shape of the mix: per-replica resources and the requested GPU model.
Shape = tuple[Resources, str | None]


class _GpuClass:
    """All mix entries of one model and one GPU request, with their CPU/RAM needs."""

    __slots__ = ("_fit", "entries", "gpu_milli")

    def __init__(self, gpu_milli: int, entries: Iterable[tuple[int, int, float]]) -> None:
        self.gpu_milli = gpu_milli
        #: (CPU rank, RAM rank, weight): ranks index the mix's sorted CPU and RAM values.
        self.entries = tuple(entries)
        self._fit: dict[tuple[int, int], float] = {}

    def fit(self, ic: int, ir: int) -> float:
        """Weight of the entries whose CPU is among the ``ic`` smallest CPU values of the mix
        and whose RAM is among the ``ir`` smallest RAM values (they fit what is free)."""
        found = self._fit.get((ic, ir))
        if found is None:
            # A scan, cached per threshold pair: cheaper to build than a prefix grid when
            # the mix is learned afresh every cycle, and a class has few entries.
            found = sum(w for c, r, w in self.entries if c < ic and r < ir)
            self._fit[(ic, ir)] = found
        return found


class WorkloadMix:
    """Request shapes with their popularity (weights are normalised to sum to 1)."""

    def __init__(self, shapes: Iterable[tuple[Resources, str | None, float]]) -> None:
        weights: dict[tuple[int, int, int, ModelKey], float] = {}
        for res, requested, weight in shapes:
            if weight <= 0:
                continue
            key = (res.cpu_milli, res.ram_mib, res.gpu_milli, model_key(requested))
            weights[key] = weights.get(key, 0.0) + weight
        total = sum(weights.values())
        if total <= 0:
            raise ValueError("a workload mix needs at least one shape with a positive weight")
        self.cpu_values = sorted({k[0] for k in weights})
        self.ram_values = sorted({k[1] for k in weights})
        by_class: dict[tuple[ModelKey, int], list[tuple[int, int, float]]] = {}
        for (cpu, ram, gpu, key_model), weight in weights.items():
            if gpu == 0:
                continue  # a task without a GPU uses none of the free GPU: no term below
            cell = (bisect_left(self.cpu_values, cpu), bisect_left(self.ram_values, ram))
            by_class.setdefault((key_model, gpu), []).append((*cell, weight / total))
        groups: dict[ModelKey, list[_GpuClass]] = {}
        for (group_model, gpu), entries in sorted(by_class.items(), key=lambda kv: kv[0][1]):
            groups.setdefault(group_model, []).append(_GpuClass(gpu, entries))
        #: Per requested model, the GPU classes in increasing request order.
        self.groups: tuple[tuple[ModelKey, tuple[_GpuClass, ...]], ...] = tuple(
            (model, tuple(classes)) for model, classes in groups.items()
        )
        # What the mix's GPU tasks ask per CPU milli and per MiB of RAM they bring along.
        gpu_total = cpu_total = ram_total = 0.0
        for (cpu_milli, ram_mib, gpu_milli, _), weight in weights.items():
            if gpu_milli:
                gpu_total += weight * gpu_milli
                cpu_total += weight * cpu_milli
                ram_total += weight * ram_mib
        #: GPU milli per CPU milli of the mix's GPU tasks, popularity-weighted (0: no such
        #: task, or they ask no CPU: then CPU strands no GPU).
        self.gpu_per_cpu = gpu_total / cpu_total if cpu_total else 0.0
        #: GPU milli per MiB of RAM, likewise.
        self.gpu_per_ram = gpu_total / ram_total if ram_total else 0.0
        # (pinned model set, device model) -> whether it matches: the pressure is
        # recomputed after every placement of a cycle, the words never change.
        self._accepts: dict[tuple[ModelKey, str], bool] = {}
        #: Per requested model set (None excluded), its share of the mix's GPU demand.
        self.pinned_demand: dict[ModelKey, float] = {}
        if gpu_total:
            for (_, _, gpu_milli, key_model), weight in weights.items():
                if gpu_milli and key_model is not None:
                    share = weight * gpu_milli / gpu_total
                    self.pinned_demand[key_model] = self.pinned_demand.get(key_model, 0.0) + share

    def model_pressure(self, free_by_model: dict[str, int]) -> dict[str, float]:
        """Per device model, how much of its free GPU the mix's pinned work will want:
        the pinned demand share that only this model (among the given ones) can serve, over
        the model's share of the free GPU, capped at :data:`PRESSURE_CAP` (absent where
        nothing is pinned to it).

        A pinned model set spreads its demand over the models it accepts by their free GPU.
        """
        total_free = sum(free_by_model.values())
        if not self.pinned_demand or total_free <= 0:
            return {}
        wanted: dict[str, float] = {}
        accepts = self._accepts
        for key, share in self.pinned_demand.items():
            accepted = []
            for m, f in free_by_model.items():
                if f > 0:
                    found = accepts.get((key, m))
                    if found is None:
                        found = accepts[(key, m)] = device_matches(key, m)
                    if found:
                        accepted.append(m)
            room = sum(free_by_model[m] for m in accepted)
            for m in accepted:
                wanted[m] = wanted.get(m, 0.0) + share * free_by_model[m] / room
        return {
            m: min(PRESSURE_CAP, want * total_free / free_by_model[m]) for m, want in wanted.items()
        }

    def thresholds(self, free_cpu: int, free_ram: int) -> tuple[int, int]:
        """How many distinct CPU and RAM request values fit in what is free."""
        return bisect_right(self.cpu_values, free_cpu), bisect_right(self.ram_values, free_ram)

    def usable(self, models: tuple[str, ...], ic: int, ir: int, alloc: tuple[int, ...]) -> float:
        """Expected free GPU milli a task of the mix can use on a server in this state."""
        total = 0.0
        for model, classes in self.groups:
            frees = sorted(
                GPU_MILLI - alloc[p] for p, name in enumerate(models) if device_matches(model, name)
            )
            if not frees:
                continue
            whole = len(frees) - bisect_left(frees, GPU_MILLI)
            best = frees[-1]
            for cls in classes:
                gpu = cls.gpu_milli
                if gpu >= GPU_MILLI:
                    if gpu % GPU_MILLI or whole < gpu // GPU_MILLI:
                        continue
                    room = whole * GPU_MILLI
                else:
                    if best < gpu:
                        continue
                    room = sum(frees[bisect_left(frees, gpu) :])
                weight = cls.fit(ic, ir)
                if weight:
                    total += weight * room
        return total


def _generic_shapes() -> list[tuple[Resources, str | None, float]]:
    shapes: list[tuple[Resources, str | None, float]] = [
        (Resources(0, 0, 0, milli), None, 0.5) for milli in range(50, 1000, 50)
    ]
    shapes += [(Resources(0, 0, 0, n * GPU_MILLI), None, 2.0) for n in (1, 2, 4, 8)]
    return shapes


#: Neutral mix for a cycle with nothing to learn from: shares of 0.05-0.95 GPU (the default
#: share rule's steps, each half as often as a tenth was before, so shares as a whole weigh
#: what they did) and 1/2/4/8 whole GPUs (whole ones four times as often as one share),
#: constraining no CPU or RAM.
GENERIC_MIX = WorkloadMix(_generic_shapes())


def observed_shapes(cycle: CycleState, queue: Sequence[Request]) -> Counter[Shape]:
    """Replicas per request shape: those running in the cycle's snapshot and those pending.

    Every replica keeps the model set it asked for (running ones too: counting them as "any
    model" taught the scorer that nothing needs the scarce model, so unconstrained work took
    its devices and the pinned work then waited while other models idled). Each missing
    replica of a pending workload counts once, like each running replica.
    """
    # Counted by (Resources, model) first, then moved over in first-seen order.
    by_shape: dict[Shape, int] = {}
    get = by_shape.get
    for node in cycle.nodes.values():
        for replica in node.running_replicas():
            shape = (replica.resources, replica.gpu_model)
            by_shape[shape] = get(shape, 0) + 1
    counts: Counter[Shape] = Counter(by_shape)
    for req in queue:
        missing = req.workload.replicas_missing
        if missing > 0:
            model = req.workload.gpu_model if req.wants_gpu else None
            counts[(req.per_replica, model)] += missing
    return counts


def estimate_mix(cycle: CycleState, queue: Sequence[Request]) -> WorkloadMix:
    """The workload mix the cycle protects: shape popularity among running and pending
    replicas (:func:`observed_shapes`); :data:`GENERIC_MIX` when there is nothing to count."""
    counts = observed_shapes(cycle, queue)
    if not counts:
        return GENERIC_MIX
    return WorkloadMix((res, model, float(n)) for (res, model), n in counts.items())


class FgdScorer:
    """``fgd``: the decrease of the server's expected unusable free GPU (milli).

    Built with a ``mix``, it scores against that mix in every cycle. Built without one, it
    learns the mix per cycle in :meth:`prepare` and scores with :data:`GENERIC_MIX` only
    where no cycle prepared it (a direct call outside the engine). ``stranding`` adds the
    GPU that the mix could not reach for lack of CPU or RAM (:meth:`stranded`).
    """

    name = "fgd"

    def __init__(
        self, mix: WorkloadMix | None = None, stranding: bool = True, model_reserve: bool = True
    ) -> None:
        self.mix = mix or GENERIC_MIX
        self.learns = mix is None
        self.stranding = stranding
        self.model_reserve = model_reserve
        # The cycle's free GPU per model (:meth:`reserving`) and the pressure last
        # computed from it, at the tally's version then.
        self._tally: GpuTally | None = None
        self._pressure: dict[str, float] = {}
        self._pressure_at = -1
        self._memo: dict[tuple[object, ...], float] = {}
        # The last learned scorer and the counts it came from: an unchanged cluster and
        # queue reuse it (and its memo) instead of learning the same mix again.
        self._last: tuple[frozenset[tuple[Shape, int]], FgdScorer] | None = None

    def prepare(self, cycle: CycleState, queue: Sequence[Request]) -> Scorer:
        """The scorer for this cycle: self with a fixed mix, else one with the learned mix;
        either way, when the mix pins work to models, a copy whose model reserve follows
        the cycle's free GPU per model (:meth:`CycleState.gpu_tally`, :meth:`reserve`)."""
        if not queue:
            return self
        scorer = self
        if self.learns:
            counts = observed_shapes(cycle, queue)
            if counts:
                key = frozenset(counts.items())
                last = self._last
                if last is not None and last[0] == key:
                    scorer = last[1]
                else:
                    mix = WorkloadMix((r, m, float(n)) for (r, m), n in counts.items())
                    scorer = FgdScorer(mix, self.stranding, self.model_reserve)
                    self._last = (key, scorer)
        if not (scorer.model_reserve and scorer.mix.pinned_demand):
            return scorer
        return scorer.reserving(cycle.gpu_tally())

    def reserving(self, tally: GpuTally) -> FgdScorer:
        """This scorer (same mix, same memo) with the model reserve over the free GPU per
        model in ``tally``: a copy, so a scorer shared by concurrent cycles (the engine,
        plans) is never changed."""
        copy = FgdScorer(self.mix, self.stranding, self.model_reserve)
        copy.learns = False
        copy._memo = self._memo  # keyed by server state only: valid under any pressure
        copy._tally = tally
        return copy

    @property
    def pressure(self) -> dict[str, float]:
        """Device model -> pressure of the mix's pinned work on it over the free GPU now
        (:meth:`WorkloadMix.model_pressure`; recomputed whenever the tally moved, so the
        cycle's own placements count); empty without a model reserve in this cycle."""
        tally = self._tally
        if tally is None:
            return {}
        if tally.version != self._pressure_at:
            self._pressure = self.mix.model_pressure(tally.free)
            self._pressure_at = tally.version
        return self._pressure

    def cycle_term(self) -> Term | None:
        """:meth:`reserve` in a cycle with pinned work in the mix, else None."""
        return self.reserve if self._tally is not None else None

    def reserve(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        """Model reserve: GPU taken from a model that the mix's pinned work needs counts as
        GPU that pinned work will miss, :data:`RESERVE_WEIGHT` milli per milli at pressure 1
        (the paper's measure is blind to models: taking a whole free GPU leaves no fragment
        on any model). A term of the score (negative or 0) that the placer adds fresh at
        each comparison, because the pressure moves with every placement of the cycle."""
        if not alloc:
            return 0.0
        pressure = self.pressure
        if not pressure:
            return 0.0
        models = node.gpu_models
        pos_of = node.pos_of
        taken = 0.0
        for index, milli in alloc:
            taken += milli * pressure.get(models[pos_of[index]], 0.0)
        return -RESERVE_WEIGHT * taken

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        # Runs for every candidate server of every GPU workload: kept flat on purpose.
        dev_alloc = node.dev_alloc
        if not dev_alloc:
            return 0.0  # no devices: nothing free, nothing fragmented, before and after
        res = req.per_replica
        mix = self.mix
        free_cpu, free_ram = node.free_cpu, node.free_ram
        after_cpu, after_ram = free_cpu - res.cpu_milli, free_ram - res.ram_mib
        gain = 0.0
        if self.stranding:
            free_gpu = node.free_gpu
            gain = self.stranded(free_cpu, free_ram, free_gpu) - self.stranded(
                after_cpu, after_ram, free_gpu - res.gpu_milli
            )
        cpu_values, ram_values = mix.cpu_values, mix.ram_values
        ic, ir = bisect_right(cpu_values, free_cpu), bisect_right(ram_values, free_ram)
        ic_after = bisect_right(cpu_values, after_cpu)
        ir_after = bisect_right(ram_values, after_ram)
        # Without a device change the fragmentation changes only if the CPU or RAM taken
        # moves some request value of the mix out of reach; mostly it does not.
        if alloc or ic != ic_after or ir != ir_after:
            models = node.gpu_models
            state = node.alloc_key
            if alloc:
                after_alloc = list(dev_alloc)
                for index, milli in alloc:
                    after_alloc[node.pos_of[index]] += milli
                after_state = alloc_key(models, after_alloc)
            else:
                after_state = state
            gain += self._usable(models, ic_after, ir_after, after_state)
            gain -= self._usable(models, ic, ir, state)
            # Fragmentation = free - usable; the free GPU drops by what the replica takes.
            gain += res.gpu_milli
        # Rounded so that placements that are equal in exact arithmetic tie exactly and the
        # profile's later scorers decide, not float noise in the last bits.
        return round(gain, 6)

    def stranded(self, free_cpu: int, free_ram: int, free_gpu: int) -> float:
        """Free GPU milli beyond what the free CPU and RAM can feed, at the mix's CPU and
        RAM per GPU milli (the GPU the mix's tasks would leave idle filling the server)."""
        if free_gpu <= 0:
            return 0.0
        # The mix's GPU milli per CPU milli / per MiB (0 when it has no GPU task).
        fed = float(free_gpu)
        gpu_per_cpu = self.mix.gpu_per_cpu
        if gpu_per_cpu and free_cpu * gpu_per_cpu < fed:
            fed = max(free_cpu, 0) * gpu_per_cpu
        gpu_per_ram = self.mix.gpu_per_ram
        if gpu_per_ram and free_ram * gpu_per_ram < fed:
            fed = max(free_ram, 0) * gpu_per_ram
        return free_gpu - fed

    def fragmentation(
        self, models: tuple[str, ...], free_cpu: int, free_ram: int, alloc: list[int]
    ) -> float:
        """Expected free GPU milli on a server in this state that a task drawn from the mix
        cannot use (``alloc``: allocated milli per device, in the order of ``models``)."""
        ic, ir = self.mix.thresholds(free_cpu, free_ram)
        usable = self._usable(models, ic, ir, alloc_key(models, alloc))
        return len(alloc) * GPU_MILLI - sum(alloc) - usable

    def _usable(self, models: tuple[str, ...], ic: int, ir: int, state: tuple[int, ...]) -> float:
        """:meth:`WorkloadMix.usable`, memoised on the server state."""
        key = (models, ic, ir, state)
        usable = self._memo.get(key)
        if usable is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            # With one model on the server ``state`` is sorted: ``usable`` does not mind.
            usable = self.mix.usable(models, ic, ir, state)
            self._memo[key] = usable
        return usable


_s: type[Scorer] = FgdScorer
_p: type[PreScore] = FgdScorer
_c: type[CycleTerm] = FgdScorer
