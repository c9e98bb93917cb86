"""Baseline ``best-fit``: the server with the least CPU and GPU left after placement.

As the FGD paper's artifact defines it (hkust-adsl/kubernetes-scheduler-simulator,
``best_fit_score.go``): left over = 0.5 x (free CPU - request) / largest server CPU +
0.5 x (free GPU milli - request) / largest server GPU milli; the smallest wins, the first in
snapshot order on ties. RAM is not part of the score (it still has to fit).
"""

from __future__ import annotations

from bench.baselines.base import FleetSpec, Node
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.snapshot import GpuAllocation


def left_over(node: Node, res: Resources, spec: FleetSpec) -> float:
    cpu = (node.free_cpu - res.cpu_milli) / spec.max_cpu
    gpu = (node.free_gpu - res.gpu_milli) / spec.max_gpu
    return 0.5 * cpu + 0.5 * gpu


class BestFit:
    name = "best-fit"
    stops_at_first = False

    def choose(
        self, res: Resources, fits: list[tuple[Node, GpuAllocation]], spec: FleetSpec
    ) -> int:
        # First of the lowest score (ties keep the fleet order, as before).
        return min(range(len(fits)), key=lambda i: left_over(fits[i][0], res, spec))
