"""Docker servers' real usage in the history: the health probe's inventory (from a real
agent over the session's dockerd, GPUs read through a fake NVML built from a real H100's
readings, the one seam since no GPU exists here) is kept and sampled; no extra agent call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agent.fake_nvml import FakeNvml
from factories.app import make_context, make_settings
from factories.clock import ManualClock
from factories.docker_fleet import docker_fleet
from fixtures.gpu_h100 import linux_nvidia_h100_80g_nvml_busy
from support.dockerd import DockerServer

from gpuyard.agent.gpus import GpuReport, read_nvml
from gpuyard.domain.usage import HistoryWindow
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.health import probe_servers
from gpuyard.services.usage.history import server_history
from gpuyard.services.usage.sampling import FRESH_INTERVALS, sample_usage

BUSY_USED_MIB, H100_MIB = 21970, 81559  # the busy capture's memory used, of the device's


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    context = make_context(make_settings(tmp_path / "data", None, demo=False))
    context.clock = ManualClock(datetime.now(UTC))
    yield context
    context.db.dispose()


def _busy_h100() -> GpuReport:
    return read_nvml(FakeNvml(linux_nvidia_h100_80g_nvml_busy()))


def test_probed_readings_are_sampled_while_fresh(
    ctx: ServiceContext, dockerd: DockerServer, tmp_path: Path
) -> None:
    assert isinstance(ctx.clock, ManualClock)
    with docker_fleet(ctx, dockerd, tmp_path, ["host-a"], gpu_probe=_busy_h100) as fleet:
        server_id = fleet.servers["host-a"]
        sample_usage(ctx)  # before any probe: allocation only, usage unknown
        ctx.clock.advance(10)
        probe_servers(ctx)
        sample_usage(ctx)
        ctx.clock.advance(FRESH_INTERVALS * ctx.settings.health_interval_s + 10)
        sample_usage(ctx)  # the reading went stale: unknown again, not 0

        before, probed, stale = server_history(ctx, server_id, HistoryWindow.HOUR).points

    assert before.figures["gpu.0.allocated"] == (0.0, 0.0)
    assert "gpu.0.utilization" not in before.figures
    assert "cpu_used" not in before.figures

    assert probed.figures["gpu.0.utilization"] == (100.0, 100.0)
    memory = pytest.approx(100 * BUSY_USED_MIB / H100_MIB, abs=0.051)  # stored to 0.1 %
    assert probed.figures["gpu.0.memory_used"] == (memory, memory)
    assert probed.figures["gpu_utilization"] == (100.0, 100.0)
    assert 0 <= probed.figures["cpu_used"][0] <= 100  # this machine's real psutil reading
    assert 0 < probed.figures["ram_used"][0] < 100

    assert "gpu.0.utilization" not in stale.figures
    assert stale.figures["gpu.0.allocated"] == (0.0, 0.0)
