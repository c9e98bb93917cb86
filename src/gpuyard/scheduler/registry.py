"""Plugin registry and profiles (kube-scheduler's ``default_registry.go`` + profiles).

:data:`REGISTRY` maps a plugin name to its factory; :data:`PROFILES` lists, per profile, which
plugins take part in each phase. The profiles differ only in their scorers and candidate
order. :func:`build_profile` checks that each named plugin implements the phase it
is listed under, once, when the profile is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gpuyard.scheduler.framework import (
    AdmissionCheck,
    CandidateOrder,
    Filter,
    Profile,
    Scorer,
    StaticFilter,
    VictimSelector,
)
from gpuyard.scheduler.plugins.cluster import ClusterFilter
from gpuyard.scheduler.plugins.fgd import FgdScorer
from gpuyard.scheduler.plugins.fit import FitFilter
from gpuyard.scheduler.plugins.gpu_model import GpuModelFilter
from gpuyard.scheduler.plugins.holds import HoldsFilter
from gpuyard.scheduler.plugins.labels import LabelsFilter
from gpuyard.scheduler.plugins.model_limits import ModelLimits
from gpuyard.scheduler.plugins.pack import GpuPackScorer, MostAllocatedScorer, TightestFirst
from gpuyard.scheduler.plugins.quota import QuotaCheck
from gpuyard.scheduler.plugins.spread import EmptiestFirst, LeastAllocatedScorer
from gpuyard.scheduler.plugins.status import ServerStatusFilter
from gpuyard.scheduler.plugins.whole_gpus import WholeGpusFilter
from gpuyard.scheduler.preemption import MinimalVictims

PluginFactory = Callable[[], object]

REGISTRY: dict[str, PluginFactory] = {
    "quota": QuotaCheck,
    "model_limits": ModelLimits,
    "status": ServerStatusFilter,
    "cluster": ClusterFilter,
    "labels": LabelsFilter,
    "gpu_model": GpuModelFilter,
    "whole_gpus": WholeGpusFilter,
    "fit": FitFilter,
    "holds": HoldsFilter,
    "gpu_pack": GpuPackScorer,
    "most_allocated": MostAllocatedScorer,
    "least_allocated": LeastAllocatedScorer,
    "tightest_first": TightestFirst,
    "emptiest_first": EmptiestFirst,
    "minimal_victims": MinimalVictims,
    "fgd": FgdScorer,
}


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """Plugin names per phase; order matters for filters (first "no" wins) and scorers."""

    admission: tuple[str, ...]
    static_filters: tuple[str, ...]
    filters: tuple[str, ...]
    scorers: tuple[str, ...]
    order: str
    victims: str


PROFILES: dict[str, ProfileConfig] = {
    # Filters: ``holds`` after ``fit``, so a held server is reported as held only if it
    # would otherwise fit; ``model_limits`` first: room there does not help a team at its
    # limit of the server's GPU model.
    # The default. GPU work goes where it adds the least expected unusable GPU for the
    # workload mix learned each cycle (``fgd``: fragmentation plus GPU stranded behind
    # CPU/RAM); ``gpu_pack`` breaks its ties (best fit in whole devices, shares onto used
    # devices; CPU-only work onto the servers with the fewest free GPUs), then
    # ``most_allocated``. On the Alibaba trace this leaves about 40% fewer GPUs unallocated
    # than best-fit where ``binpack`` leaves 5-16% fewer (bench/analysis.md, S5).
    "pack": ProfileConfig(
        admission=("quota", "model_limits"),
        static_filters=("status", "cluster", "labels", "gpu_model", "whole_gpus"),
        filters=("model_limits", "fit", "holds"),
        scorers=("fgd", "gpu_pack", "most_allocated"),
        order="tightest_first",
        victims="minimal_victims",
    ),
    # The former default: plain best-fit packing of whole devices and shares.
    "binpack": ProfileConfig(
        admission=("quota", "model_limits"),
        static_filters=("status", "cluster", "labels", "gpu_model", "whole_gpus"),
        filters=("model_limits", "fit", "holds"),
        scorers=("gpu_pack", "most_allocated"),
        order="tightest_first",
        victims="minimal_victims",
    ),
    "spread": ProfileConfig(
        admission=("quota", "model_limits"),
        static_filters=("status", "cluster", "labels", "gpu_model", "whole_gpus"),
        filters=("model_limits", "fit", "holds"),
        scorers=("least_allocated",),
        order="emptiest_first",
        victims="minimal_victims",
    ),
    # Fragmentation Gradient Descent (plugins/fgd.py) alone; most_allocated breaks its ties.
    "fgd": ProfileConfig(
        admission=("quota", "model_limits"),
        static_filters=("status", "cluster", "labels", "gpu_model", "whole_gpus"),
        filters=("model_limits", "fit", "holds"),
        scorers=("fgd", "most_allocated"),
        order="tightest_first",
        victims="minimal_victims",
    ),
}


def build_profile(
    name: str,
    registry: Mapping[str, PluginFactory] | None = None,
    profiles: Mapping[str, ProfileConfig] | None = None,
) -> Profile:
    """Instantiate the plugins of profile ``name``; ValueError for unknown names.

    Builds anew on every call: ``EngineCache.profile`` keeps the default profiles."""
    registry = registry or REGISTRY
    profiles = profiles or PROFILES
    config = profiles.get(name)
    if config is None:
        raise ValueError(f"unknown scheduler profile {name!r}; known: {', '.join(profiles)}")

    def make(plugin: str, phase: type) -> Any:
        # ``phase`` is a runtime-checkable Protocol: the plugin must implement that phase.
        factory = registry.get(plugin)
        if factory is None:
            raise ValueError(f"profile {name!r}: unknown plugin {plugin!r}")
        instance = factory()
        if not isinstance(instance, phase):
            raise ValueError(f"profile {name!r}: plugin {plugin!r} is not a {phase.__name__}")
        return instance

    return Profile(
        name=name,
        admission=tuple(make(p, AdmissionCheck) for p in config.admission),
        static_filters=tuple(make(p, StaticFilter) for p in config.static_filters),
        filters=tuple(make(p, Filter) for p in config.filters),
        scorers=tuple(make(p, Scorer) for p in config.scorers),
        order=make(config.order, CandidateOrder),
        victims=make(config.victims, VictimSelector),
    )
