"""Baseline ``dot-product``: Tetris's alignment score (Grandl et al., SIGCOMM 2014).

Score = dot product of the request and the server's free resources, CPU and GPU each
normalised by the largest server. Configured as the FGD paper's artifact runs it
(``dot_product_score.go`` with ``-norm max -dimext merge``): the *smallest* product wins,
so a request goes where the least of what it needs is left (a packing rule). First in
snapshot order on ties.
"""

from __future__ import annotations

from bench.baselines.base import FleetSpec, Node
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.snapshot import GpuAllocation


def alignment(node: Node, res: Resources, spec: FleetSpec) -> float:
    cpu = (node.free_cpu / spec.max_cpu) * (res.cpu_milli / spec.max_cpu)
    gpu = (node.free_gpu / spec.max_gpu) * (res.gpu_milli / spec.max_gpu)
    return cpu + gpu


class DotProduct:
    name = "dot-product"
    stops_at_first = False

    def choose(
        self, res: Resources, fits: list[tuple[Node, GpuAllocation]], spec: FleetSpec
    ) -> int:
        # First of the lowest score (ties keep the fleet order, as before).
        return min(range(len(fits)), key=lambda i: alignment(fits[i][0], res, spec))
