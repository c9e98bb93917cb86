"""Baseline ``first-fit``: the first server in snapshot order that fits (naive, no index)."""

from __future__ import annotations

from bench.baselines.base import FleetSpec, Node
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.snapshot import GpuAllocation


class FirstFit:
    name = "first-fit"
    stops_at_first = True

    def choose(
        self, res: Resources, fits: list[tuple[Node, GpuAllocation]], spec: FleetSpec
    ) -> int:
        return 0
