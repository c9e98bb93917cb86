"""Baseline ``random-fit``: a uniformly random server among those that fit (seeded)."""

from __future__ import annotations

import random

from bench.baselines.base import FleetSpec, Node
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.snapshot import GpuAllocation


class RandomFit:
    name = "random-fit"
    stops_at_first = False

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def choose(
        self, res: Resources, fits: list[tuple[Node, GpuAllocation]], spec: FleetSpec
    ) -> int:
        return self._rng.randrange(len(fits))
