"""The S5 share/memory variants re-shape pods as an API user would (bench/share_variants.py)."""

from __future__ import annotations

import pytest

from bench.share_variants import TWENTIETHS, WITH_MEMORY, rounded_share, variant
from bench.trace import Trace, TracePod, load_trace
from gpuyard.domain.resources import Resources


@pytest.mark.parametrize(
    ("milli", "step", "rounded"),
    [(460, 100, 500), (460, 50, 500), (410, 50, 450), (50, 100, 100), (960, 50, 1000)],
    ids=["tenths", "twentieths", "up, not to the nearest", "smallest tenth", "to a whole GPU"],
)
def test_a_share_rounds_up_to_the_step(milli: int, step: int, rounded: int) -> None:
    assert rounded_share(milli, step) == rounded


def test_memory_is_sized_for_the_smallest_device_a_pod_may_use() -> None:
    trace = load_trace(node_stride=200)
    pods = (
        TracePod("any", Resources(1000, 1024, 0, 250), None, 0),
        TracePod("v100", Resources(1000, 1024, 0, 250), "V100M32", 1),
        TracePod("whole", Resources(1000, 1024, 0, 2000), None, 2),
    )
    shaped = variant(Trace(trace.servers, pods, 0), WITH_MEMORY).pods
    assert [p.resources.gpu_memory_mib // 1024 for p in shaped] == [4, 8, 0]
    plain = variant(Trace(trace.servers, pods, 0), TWENTIETHS).pods
    assert all(p.resources.gpu_memory_mib == 0 for p in plain)
    servers = variant(Trace(trace.servers, pods, 0), TWENTIETHS).servers
    assert all(g.memory_mib >= 16 * 1024 for s in servers for g in s.gpus)
