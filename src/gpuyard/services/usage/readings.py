"""Docker servers' real usage: the health loop's probe already fetched the agent's
inventory, so its apply step keeps the readings here (no second call per server); the
sampling loop reads them while they are fresh."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.agent.models import Inventory
from gpuyard.domain.usage import GpuReading, UsageReading, percent
from gpuyard.services.loops.item_failures import blames_item, report_item_failure
from gpuyard.store import usage_history


def _finite(value: float | None) -> float | None:
    """NaN or infinity from a driver says nothing (and JSON columns cannot hold it)."""
    return value if value is not None and math.isfinite(value) else None


def reading_from_inventory(inventory: Inventory) -> UsageReading:
    """The usage figures of an agent's inventory (None where the host did not say)."""
    ram_used = inventory.ram_total_mib - inventory.ram_available_mib
    return UsageReading(
        cpu_used_pct=_finite(inventory.cpu_percent),
        ram_used_pct=percent(ram_used, inventory.ram_total_mib),
        gpus=tuple(
            GpuReading(
                gpu.index,
                _finite(gpu.utilization_gpu_pct),
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
    probe's apply transaction; no network I/O here). In its own savepoint: a reading that
    cannot be kept is logged once and never costs the probe its result (the server's
    missed-probe count, its status)."""
    try:
        with session.begin_nested():
            reading = reading_from_inventory(inventory)
            usage_history.record_reading(session, server_id, at, reading)
    except Exception as exc:
        if not blames_item(exc):
            raise
        report_item_failure("health", f"server {server_id}", exc, "usage reading not kept")
