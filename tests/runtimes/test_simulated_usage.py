"""Simulated servers' usage (runtimes/simulated_usage.py through Runtime.estimate_usage):
it follows the allocation within stated bands, moves over time, and is deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.usage import GpuLoad, ServerLoad
from gpuyard.runtimes.docker import DockerRuntime
from gpuyard.runtimes.simulated import SimulatedRuntime
from gpuyard.runtimes.simulated_usage import (
    CPU_BAND,
    IDLE_MAX_PCT,
    MEMORY_BAND,
    UTILIZATION_BAND,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _load(milli: list[int], cpu_share: float = 0.5) -> ServerLoad:
    gpus = tuple(GpuLoad(i, m, 81920) for i, m in enumerate(milli))
    return ServerLoad("server-a", cpu_share, 0.25, gpus)


@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=8),
    st.floats(0, 1),
    st.integers(0, 10**9),
)
def test_usage_stays_within_the_bands_of_the_allocated_share(
    milli: list[int], cpu_share: float, offset_s: int
) -> None:
    at = T0 + timedelta(seconds=offset_s)
    reading = SimulatedRuntime().estimate_usage(_load(milli, cpu_share), at)

    assert reading is not None
    for gpu, allocated in zip(reading.gpus, milli, strict=True):
        share = allocated / 1000
        assert gpu.utilization_pct is not None
        assert gpu.memory_used_pct is not None
        if share == 0:
            assert 0 <= gpu.utilization_pct <= IDLE_MAX_PCT
            assert gpu.memory_used_pct == 0
        else:
            low, high = UTILIZATION_BAND
            assert 100 * share * low - 0.01 <= gpu.utilization_pct <= 100 * share * high + 0.01
            low, high = MEMORY_BAND
            assert 100 * share * low - 0.01 <= gpu.memory_used_pct <= 100 * share * high + 0.01
    assert reading.cpu_used_pct is not None
    assert reading.cpu_used_pct <= 100 * cpu_share * CPU_BAND[1] + 0.01


def test_usage_moves_over_time_and_repeats_for_the_same_time() -> None:
    runtime = SimulatedRuntime()
    load = _load([1000, 500])
    readings = [runtime.estimate_usage(load, T0 + timedelta(seconds=10 * i)) for i in range(30)]

    utilizations = {r.gpus[0].utilization_pct for r in readings if r is not None}
    assert len(utilizations) > 10  # the demo's charts move
    assert runtime.estimate_usage(load, T0) == readings[0]  # deterministic


def test_the_docker_runtime_leaves_usage_to_the_agents_readings() -> None:
    def no_agents(server_name: str) -> object:
        raise AssertionError("estimate_usage must not call an agent")

    runtime = DockerRuntime(no_agents)  # type: ignore[arg-type]

    assert runtime.estimate_usage(_load([1000]), T0) is None
