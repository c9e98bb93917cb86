"""Plausible usage for simulated servers, made up from their allocations.

Utilisation follows the allocated share, with noise that is deterministic (a hash of the
server, the device and the time) and bounded, so the demo's charts move while a test can
predict the bounds: a GPU with a share ``s`` (0-1) runs at ``100 * s * (0.5 .. 1.0)``
percent, with memory ``100 * s * (0.3 .. 0.9)``; an idle device shows 0-2 %. CPU and RAM
use follow their allocated shares the same way. The noise moves smoothly: it is drawn
once per :data:`NOISE_PERIOD_S` and interpolated in between.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from gpuyard.domain.usage import GpuReading, ServerLoad, UsageReading

#: Seconds between two independent noise draws (values in between are interpolated).
NOISE_PERIOD_S = 60.0
#: (low, high) multipliers of the allocated share, per figure.
UTILIZATION_BAND = (0.5, 1.0)
MEMORY_BAND = (0.3, 0.9)
CPU_BAND = (0.2, 0.9)
RAM_BAND = (0.4, 0.95)
#: An unallocated GPU's utilisation stays under this (percent).
IDLE_MAX_PCT = 2.0


def _draw(key: str, period: int) -> float:
    digest = hashlib.blake2b(f"{key}:{period}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def noise(key: str, at: datetime) -> float:
    """A value in [0, 1) that depends only on ``key`` and ``at``, and moves smoothly."""
    position = at.timestamp() / NOISE_PERIOD_S
    period = int(position // 1)
    weight = position - period
    return (1 - weight) * _draw(key, period) + weight * _draw(key, period + 1)


def _within(share: float, band: tuple[float, float], key: str, at: datetime) -> float:
    low, high = band
    return 100.0 * share * (low + (high - low) * noise(key, at))


def simulated_usage(load: ServerLoad, at: datetime) -> UsageReading:
    """The usage of a simulated server whose allocation is ``load``, at ``at``."""
    server = load.server_id
    gpus = []
    for gpu in load.gpus:
        share = min(1.0, gpu.allocated_milli / 1000)
        key = f"{server}:{gpu.index}"
        if share > 0:
            utilization = _within(share, UTILIZATION_BAND, f"{key}:u", at)
            memory = _within(share, MEMORY_BAND, f"{key}:m", at)
        else:
            utilization = IDLE_MAX_PCT * noise(f"{key}:u", at)
            memory = 0.0
        gpus.append(GpuReading(gpu.index, round(utilization, 2), round(memory, 2)))
    return UsageReading(
        cpu_used_pct=round(_within(load.cpu_share, CPU_BAND, f"{server}:cpu", at), 2),
        ram_used_pct=round(_within(load.ram_share, RAM_BAND, f"{server}:ram", at), 2),
        gpus=tuple(gpus),
    )
