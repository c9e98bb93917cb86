"""Profile ``spread``: put each replica where the most is left (least allocated).

Scorer ``least_allocated``: the mean over CPU, RAM and GPU milli of the free fraction left on
the server after placement; higher is better. Candidate order ``emptiest_first`` visits the
servers with the most free devices first. Within a server the slot choice still packs shares
onto partly used devices (:mod:`gpuyard.scheduler.gpu_slots`).
"""

from __future__ import annotations

from collections.abc import Iterator

from gpuyard.scheduler.framework import CandidateOrder, CandidateSource, Scorer
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import GpuAllocation
from gpuyard.scheduler.state import NodeState


class LeastAllocatedScorer:
    name = "least_allocated"

    def score(self, req: Request, node: NodeState, alloc: GpuAllocation) -> float:
        cap = node.view.capacity
        res = req.per_replica
        parts: list[float] = []
        for total, free, want in (
            (cap.cpu_milli, node.free_cpu, res.cpu_milli),
            (cap.ram_mib, node.free_ram, res.ram_mib),
            (cap.gpu_milli, node.free_gpu, res.gpu_milli),
        ):
            if total > 0:
                parts.append((free - want) / total)
        return sum(parts) / len(parts) if parts else 0.0


class EmptiestFirst:
    """Candidates with the most free devices (of the model) first."""

    name = "emptiest_first"

    def candidates(self, req: Request, source: CandidateSource) -> Iterator[NodeState]:
        if req.whole_gpus:
            yield from source.buckets_descending(req.whole_gpus)
        elif req.share_milli:
            seen: set[str] = set()
            for node in source.buckets_descending(1):
                seen.add(node.id)
                yield node
            for node in source.partial():
                if node.id not in seen:
                    yield node
        else:
            yield from source.buckets_descending(0)


_s: type[Scorer] = LeastAllocatedScorer
_o: type[CandidateOrder] = EmptiestFirst
