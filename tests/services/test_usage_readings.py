"""An agent's inventory as a usage reading (services/usage/readings.py)."""

from __future__ import annotations

import math

from gpuyard.agent.models import GpuInfo, Inventory
from gpuyard.runtimes.agent_records import reading_from_inventory


def _inventory(cpu_percent: float | None, gpus: list[GpuInfo]) -> Inventory:
    return Inventory(
        agent_name="a",
        agent_version="1",
        hostname="h",
        cpu_count=8,
        cpu_percent=cpu_percent,
        ram_total_mib=1000,
        ram_available_mib=250,
        disk_total_mib=1,
        disk_free_mib=1,
        gpus=gpus,
        gpu_source="nvml",
        publish_address="127.0.0.1",
    )


def _gpu(index: int, used: int | None, utilization: float | None) -> GpuInfo:
    return GpuInfo(
        index=index,
        uuid=f"GPU-{index}",
        name="H100",
        memory_total_mib=80_000,
        memory_used_mib=used,
        utilization_gpu_pct=utilization,
    )


def test_an_inventory_becomes_percentages() -> None:
    reading = reading_from_inventory(_inventory(12.5, [_gpu(0, 20_000, 90.0)]))

    assert (reading.cpu_used_pct, reading.ram_used_pct) == (12.5, 75.0)
    (gpu,) = reading.gpus
    assert (gpu.index, gpu.utilization_pct, gpu.memory_used_pct) == (0, 90.0, 25.0)


def test_what_a_host_did_not_say_stays_unknown() -> None:
    gpus = [_gpu(0, None, math.nan), _gpu(1, 10, math.inf)]

    reading = reading_from_inventory(_inventory(math.nan, gpus))

    assert reading.cpu_used_pct is None
    assert [(g.utilization_pct, g.memory_used_pct) for g in reading.gpus] == [
        (None, None),
        (None, 10 / 800),
    ]
