"""Scorer ``fgd``: Fragmentation Gradient Descent (Weng et al., USENIX ATC 2023).

Idea: a server's free GPU capacity is only worth something if the workloads that will
arrive can use it. Given a *workload mix* (the request shapes expected, with their
popularity), the fragmentation of a server is the free GPU milli that a task drawn from the
mix could **not** use there, averaged over the mix:

- a task that needs no GPU, cannot reach a device of its model, or does not fit the server's
  free CPU, RAM or GPU at all, can use none of the free GPU: all of it is a fragment for it;
- a task that fits can use, of the devices of its model, those with at least
  ``min(request, 1000)`` milli free (a share needs that much room on one device; a whole-GPU
  task needs entirely free devices); the rest of the free GPU is a fragment for it.

``fgd`` scores a placement by how much it *reduces* the server's fragmentation (before minus
after, in GPU milli; higher is better), so each task goes where it adds the least
fragmentation: the gradient-descent step of the paper. The scorer is pure; the state-keyed
memo below only caches a function of its arguments.

The mix is given when the scorer is built (:class:`WorkloadMix`); the registry's default is
:data:`GENERIC_MIX`, a neutral mix of common request sizes that constrains no CPU or RAM.
A deployment that knows its workload (or a benchmark replaying a trace, as the paper does)
builds the scorer with its own mix.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.framework import Scorer
from gpuyard.scheduler.gpu_match import ModelKey, device_matches, model_key
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import GpuAllocation
from gpuyard.scheduler.state import NodeState

#: Entries kept in the fragmentation memo before it starts over (bounds memory).
MEMO_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class _GpuClass:
    """All mix entries of one model and one GPU request, by CPU/RAM threshold."""

    gpu_milli: int
    #: fit[ic][ir]: weight of the entries whose CPU is among the ``ic`` smallest CPU values
    #: and whose RAM is among the ``ir`` smallest RAM values (a 2-D prefix sum).
    fit: tuple[tuple[float, ...], ...]


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
        by_class: dict[tuple[ModelKey, int], dict[tuple[int, int], float]] = {}
        for (cpu, ram, gpu, key_model), weight in weights.items():
            if gpu == 0:
                continue  # a task without a GPU uses none of the free GPU: no term below
            cell = (bisect_left(self.cpu_values, cpu), bisect_left(self.ram_values, ram))
            cells = by_class.setdefault((key_model, gpu), {})
            cells[cell] = cells.get(cell, 0.0) + weight / total
        groups: dict[ModelKey, list[_GpuClass]] = {}
        for (group_model, gpu), cells in sorted(by_class.items(), key=lambda kv: kv[0][1]):
            groups.setdefault(group_model, []).append(_GpuClass(gpu, self._prefix(cells)))
        #: Per requested model, the GPU classes in increasing request order.
        self.groups: tuple[tuple[ModelKey, tuple[_GpuClass, ...]], ...] = tuple(
            (model, tuple(classes)) for model, classes in groups.items()
        )

    def _prefix(self, cells: dict[tuple[int, int], float]) -> tuple[tuple[float, ...], ...]:
        rows, cols = len(self.cpu_values) + 1, len(self.ram_values) + 1
        grid = [[0.0] * cols for _ in range(rows)]
        for (c, r), weight in cells.items():
            grid[c + 1][r + 1] += weight
        for c in range(1, rows):
            for r in range(1, cols):
                grid[c][r] += grid[c - 1][r] + grid[c][r - 1] - grid[c - 1][r - 1]
        return tuple(tuple(row) for row in grid)

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
                weight = cls.fit[ic][ir]
                if weight:
                    total += weight * room
        return total


def _generic_shapes() -> list[tuple[Resources, str | None, float]]:
    shapes: list[tuple[Resources, str | None, float]] = [
        (Resources(0, 0, 0, milli), None, 1.0) for milli in range(100, 1000, 100)
    ]
    shapes += [(Resources(0, 0, 0, n * GPU_MILLI), None, 2.0) for n in (1, 2, 4, 8)]
    return shapes


#: Neutral default: shares of 0.1-0.9 GPU and 1/2/4/8 whole GPUs (whole ones twice as often).
GENERIC_MIX = WorkloadMix(_generic_shapes())


class FgdScorer:
    """``fgd``: the decrease of the server's expected GPU fragmentation (milli)."""

    name = "fgd"

    def __init__(self, mix: WorkloadMix | None = None) -> None:
        self.mix = mix or GENERIC_MIX
        self._memo: dict[tuple[object, ...], float] = {}

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        res = req.per_replica
        models = tuple(g.model for g in node.view.gpus)
        before = self.fragmentation(models, node.free_cpu, node.free_ram, node.dev_alloc)
        after_alloc = list(node.dev_alloc)
        for index, milli in alloc:
            after_alloc[node.pos_of[index]] += milli
        after = self.fragmentation(
            models, node.free_cpu - res.cpu_milli, node.free_ram - res.ram_mib, after_alloc
        )
        return before - after

    def fragmentation(
        self, models: tuple[str, ...], free_cpu: int, free_ram: int, alloc: list[int]
    ) -> float:
        """Expected free GPU milli on a server in this state that a task drawn from the mix
        cannot use (``alloc``: allocated milli per device, in the order of ``models``)."""
        ic, ir = self.mix.thresholds(free_cpu, free_ram)
        # With one model on the server, device order does not matter: share memo entries.
        state = tuple(sorted(alloc)) if len(set(models)) <= 1 else tuple(alloc)
        key = (models, ic, ir, state)
        usable = self._memo.get(key)
        if usable is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            usable = self.mix.usable(models, ic, ir, state)
            self._memo[key] = usable
        return len(alloc) * GPU_MILLI - sum(alloc) - usable


_s: type[Scorer] = FgdScorer
