"""Packing plugins: keep whole GPUs and whole servers free.

Profile ``binpack`` ranks by these alone; the default ``pack`` ranks GPU work by ``fgd``
first (plugins/fgd.py) and uses these to break its ties. Scorers (compared in this order,
later ones only break ties):

1. ``gpu_pack`` — anti-fragmentation of GPUs:
   - whole-GPU request: the fewer whole devices of the model left free on the server after
     placing it, the better (best fit: a 2-GPU job goes where exactly 2 are free, leaving an
     8-free server whole);
   - GPU share: a server where the share lands on an already partly used device beats one
     where it must break a free device; among the first, the least room left on that device
     wins (best fit); among the second, the fewest whole devices left (break up the most
     fragmented server);
   - no GPU: the fewer free GPU milli on the server the better, so CPU-only work stays off
     the GPUs' CPUs and RAM.
2. ``most_allocated`` — the fuller the server's CPU and RAM after placement, the better.

Candidate order ``tightest_first`` visits servers with the fewest free devices first, so the
capped search of :attr:`SchedulerConfig.candidates_to_score` still finds the best server by
``gpu_pack`` (for ``fgd`` it is a prior: the best by fragmentation among the tightest).
"""

from __future__ import annotations

from collections.abc import Iterator

from gpuyard.domain.resources import GPU_MILLI
from gpuyard.scheduler.framework import CandidateOrder, CandidateSource, Scorer
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import GpuAllocation
from gpuyard.scheduler.state import NodeState


class GpuPackScorer:
    name = "gpu_pack"

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        if not req.wants_gpu:
            return -node.free_gpu / GPU_MILLI
        whole_left = node.whole_free(node.matching(req.model))
        if req.whole_gpus:
            return -float(whole_left - req.whole_gpus)
        index, milli = alloc[0]
        used_before = node.dev_alloc[node.pos_of[index]]
        if used_before > 0:
            # (1100, 2000]: on a partly used device; less room left scores higher.
            return float(2 * GPU_MILLI - (GPU_MILLI - used_before - milli))
        # (936, 1000]: breaks a free device; fewer whole devices left scores higher.
        return float(GPU_MILLI - (whole_left - 1))


class MostAllocatedScorer:
    name = "most_allocated"

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        return _used_fraction_after(req, node)


def _used_fraction_after(req: Request, node: NodeState) -> float:
    """Mean over CPU and RAM of the allocated fraction once the replica is placed."""
    cap = node.view.capacity
    res = req.per_replica
    parts: list[float] = []
    if cap.cpu_milli > 0:
        parts.append((cap.cpu_milli - node.free_cpu + res.cpu_milli) / cap.cpu_milli)
    if cap.ram_mib > 0:
        parts.append((cap.ram_mib - node.free_ram + res.ram_mib) / cap.ram_mib)
    return sum(parts) / len(parts) if parts else 0.0


class TightestFirst:
    """Candidates with the fewest free devices (of the model) first."""

    name = "tightest_first"

    def candidates(self, req: Request, source: CandidateSource) -> Iterator[NodeState]:
        if req.whole_gpus:
            yield from source.buckets_ascending(req.whole_gpus)
        elif req.share_milli:
            seen: set[str] = set()
            for node in source.partial():
                seen.add(node.id)
                yield node
            for node in source.buckets_ascending(1):
                if node.id not in seen:
                    yield node
        else:
            yield from source.buckets_ascending(0)


_s1: type[Scorer] = GpuPackScorer
_s2: type[Scorer] = MostAllocatedScorer
_o: type[CandidateOrder] = TightestFirst
