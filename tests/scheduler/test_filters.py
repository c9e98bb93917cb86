"""Filter plugins: each verdict's code and numbers, plus the registry's profiles."""

from __future__ import annotations

from dataclasses import replace

import pytest
from factories.scheduler import (
    A100,
    H100,
    make_cycle,
    make_pending,
    make_request,
    make_server,
    make_snapshot,
)

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.fairshare import QueueNode
from gpuyard.scheduler.framework import CPU, GPU_DEVICES, GPU_SHARE, RAM, Code
from gpuyard.scheduler.plugins.cluster import ClusterFilter
from gpuyard.scheduler.plugins.fit import FitFilter
from gpuyard.scheduler.plugins.gpu_model import GpuModelFilter
from gpuyard.scheduler.plugins.labels import LabelsFilter
from gpuyard.scheduler.plugins.status import ServerStatusFilter
from gpuyard.scheduler.registry import PROFILES, REGISTRY, ProfileConfig, build_profile
from gpuyard.scheduler.snapshot import PendingWorkload, ServerView
from gpuyard.scheduler.state import CycleState

STATIC = [
    ("online passes", ServerStatusFilter(), make_server(), make_pending("w"), Code.SUCCESS),
    (
        "draining is unavailable, not unresolvable",
        ServerStatusFilter(),
        make_server(status="draining"),
        make_pending("w"),
        Code.UNAVAILABLE,
    ),
    (
        "maintenance is unavailable",
        ServerStatusFilter(),
        make_server(status="maintenance"),
        make_pending("w"),
        Code.UNAVAILABLE,
    ),
    ("any cluster", ClusterFilter(), make_server(cluster="c2"), make_pending("w"), Code.SUCCESS),
    (
        "pinned to another cluster",
        ClusterFilter(),
        make_server(cluster="c2"),
        make_pending("w", cluster="c1"),
        Code.UNRESOLVABLE,
    ),
    (
        "labels match",
        LabelsFilter(),
        make_server(labels={"zone": "a", "disk": "ssd"}),
        make_pending("w", selector={"zone": "a"}),
        Code.SUCCESS,
    ),
    (
        "label value differs",
        LabelsFilter(),
        make_server(labels={"zone": "b"}),
        make_pending("w", selector={"zone": "a"}),
        Code.UNRESOLVABLE,
    ),
    (
        "no gpu requested ignores gpu model",
        GpuModelFilter(),
        make_server(),
        make_pending("w", model="A100"),
        Code.SUCCESS,
    ),
    (
        "server without GPUs",
        GpuModelFilter(),
        make_server(),
        make_pending("w", gpu=1),
        Code.UNRESOLVABLE,
    ),
    (
        "wrong model",
        GpuModelFilter(),
        make_server(gpus=8, model=A100),
        make_pending("w", gpu=1, model="H100"),
        Code.UNRESOLVABLE,
    ),
    (
        "mixed server has one device of the model",
        GpuModelFilter(),
        make_server(models=[A100, A100, H100]),
        make_pending("w", gpu=1, model="h100"),
        Code.SUCCESS,
    ),
]


@pytest.mark.parametrize(
    ("plugin", "server", "workload", "code"), [c[1:] for c in STATIC], ids=[c[0] for c in STATIC]
)
def test_static_filters(
    plugin: ServerStatusFilter, server: ServerView, workload: PendingWorkload, code: Code
) -> None:
    verdict = plugin.filter_static(make_request(workload), server)
    assert verdict.code is code
    assert verdict.ok is (code is Code.SUCCESS)
    if not verdict.ok:
        assert verdict.phrase  # every "no" says why


# (name, server, workload, code, [(resource, requested, available, capacity)])
FIT = [
    ("fits", make_server(gpus=2), make_pending("w", gpu=1), Code.SUCCESS, []),
    (
        "equal edge case: exactly the free amount",
        make_server(cpu=4, ram_gb=8, used=Resources(2000, 4096, 0, 0)),
        make_pending("w", cpu=2, ram_gb=4),
        Code.SUCCESS,
        [],
    ),
    (
        "too little free cpu and ram, both reported",
        make_server(cpu=4, ram_gb=8, used=Resources(3000, 6144, 0, 0)),
        make_pending("w", cpu=2, ram_gb=4),
        Code.UNSCHEDULABLE,
        [(CPU, 2000, 1000, 4000), (RAM, 4096, 2048, 8192)],
    ),
    (
        "bigger than the server in total is unresolvable",
        make_server(cpu=4),
        make_pending("w", cpu=8),
        Code.UNRESOLVABLE,
        [(CPU, 8000, 4000, 4000)],
    ),
    (
        "more GPUs than the server has devices",
        make_server(gpus=4),
        make_pending("w", gpu=8),
        Code.UNRESOLVABLE,
        [(GPU_DEVICES, 8, 4, 4)],
    ),
    (
        "only devices of the model count on a mixed server",
        make_server(models=[H100, H100, A100, A100]),
        make_pending("w", gpu=3, model="H100"),
        Code.UNRESOLVABLE,
        [(GPU_DEVICES, 3, 2, 2)],
    ),
    (
        "whole GPUs: partly used devices are not free",
        make_server(gpus=4, gpu_used=[1000, 500, 100, 0]),
        make_pending("w", gpu=2),
        Code.UNSCHEDULABLE,
        [(GPU_DEVICES, 2, 1, 4)],
    ),
    (
        "share needs room on one device, not in total",
        make_server(gpus=2, gpu_used=[600, 700]),
        make_pending("w", gpu=0.5),
        Code.UNSCHEDULABLE,
        [(GPU_SHARE, 500, 400, 1000)],
    ),
    (
        "share fits a partly used device",
        make_server(gpus=2, gpu_used=[600, 1000]),
        make_pending("w", gpu=0.4),
        Code.SUCCESS,
        [],
    ),
]


@pytest.mark.parametrize(
    ("server", "workload", "code", "numbers"), [c[1:] for c in FIT], ids=[c[0] for c in FIT]
)
def test_fit_filter(
    server: ServerView,
    workload: PendingWorkload,
    code: Code,
    numbers: list[tuple[str, int, int, int]],
) -> None:
    cycle = make_cycle([server])
    node = cycle.nodes[server.id]
    req = make_request(workload)
    fit = FitFilter()
    assert fit.filter(req, node, cycle).ok is (code is Code.SUCCESS)
    verdict = fit.explain(req, node, cycle)
    assert verdict.code is code
    got = [(i.resource, i.requested, i.available, i.capacity) for i in verdict.insufficient]
    assert got == numbers


def test_profiles_are_registry_configurations() -> None:
    pack, spread = build_profile("pack"), build_profile("spread")
    binpack = build_profile("binpack")
    # The default ranks GPU work by fragmentation (fgd); packing only breaks its ties.
    assert [s.name for s in pack.scorers] == ["fgd", "gpu_pack", "most_allocated"]
    assert [s.name for s in binpack.scorers] == ["gpu_pack", "most_allocated"]
    assert [s.name for s in spread.scorers] == ["least_allocated"]
    assert pack.order.name == binpack.order.name == "tightest_first"
    assert spread.order.name == "emptiest_first"
    # Same filters: the profiles differ only in how they rank.
    filters = ["model_limits", "fit", "holds"]
    assert [f.name for f in pack.filters] == [f.name for f in spread.filters] == filters
    assert [a.name for a in pack.admission] == ["quota", "model_limits"]


def test_a_cycle_without_per_model_limits_drops_their_plugin() -> None:
    """The hot path pays nothing for per-model limits no team has (Profile.for_cycle)."""
    pack = build_profile("pack")
    plain = make_cycle([make_server("s1", gpus=8)])
    bare = pack.for_cycle(plain, [])
    assert "model_limits" not in [f.name for f in bare.filters]
    assert [a.name for a in bare.admission] == ["quota"]
    snapshot = replace(
        make_snapshot([make_server("s1", gpus=8)]),
        teams={"t": QueueNode("t", gpu_model_limits=(("H100", 1000),))},
    )
    limited = pack.for_cycle(CycleState(snapshot, now=0), [])
    assert [f.name for f in limited.filters] == ["model_limits", "fit", "holds"]


@pytest.mark.parametrize(
    ("name", "profiles", "message"),
    [
        ("nope", PROFILES, "unknown scheduler profile"),
        ("bad", {"bad": ProfileConfig((), (), ("missing",), (), "tightest_first", "x")}, "unknown"),
        (
            "x",
            {"x": ProfileConfig((), (), ("gpu_pack",), (), "tightest_first", "minimal_victims")},
            "is not a Filter",
        ),
    ],
    ids=["unknown profile", "unknown plugin", "plugin in the wrong phase"],
)
def test_build_profile_rejects_bad_configs(
    name: str, profiles: dict[str, ProfileConfig], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_profile(name, REGISTRY, profiles)
