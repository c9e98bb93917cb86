"""Docker servers' real usage: the health loop's probe already fetched the agent's
inventory, so its apply step keeps the readings here (no second call per server); the
sampling loop reads them while they are fresh."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.agent.models import Inventory
from gpuyard.domain.usage import GpuReading, UsageReading, percent
from gpuyard.store import usage_history


def reading_from_inventory(inventory: Inventory) -> UsageReading:
    """The usage figures of an agent's inventory (None where the host did not say)."""
    ram_used = inventory.ram_total_mib - inventory.ram_available_mib
    return UsageReading(
        cpu_used_pct=inventory.cpu_percent,
        ram_used_pct=percent(ram_used, inventory.ram_total_mib),
        gpus=tuple(
            GpuReading(
                gpu.index,
                gpu.utilization_gpu_pct,
                None
                if gpu.memory_used_mib is None
                else percent(gpu.memory_used_mib, gpu.memory_total_mib),
            )
            for gpu in inventory.gpus
        ),
    )


def record_probe_reading(
    session: Session, server_id: str, inventory: Inventory, at: datetime
) -> None:
    """Keep the usage of a probe's inventory as the server's last reading (inside the
    probe's apply transaction; no network I/O here)."""
    usage_history.record_reading(session, server_id, at, reading_from_inventory(inventory))
