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

from gpuyard.domain.culling import ReplicaUsage, ReplicaUsageQuery
from gpuyard.domain.usage import GpuLoad, GpuReading, ServerLoad, UsageReading

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


#: Commands whose replicas do nothing in the simulation (the first word's last path part).
IDLE_COMMANDS = frozenset({"sleep"})


def replica_is_idle(command: tuple[str, ...] | None) -> bool:
    """Whether a simulated replica running ``command`` does nothing (``sleep ...``)."""
    return bool(command) and command is not None and command[0].rsplit("/", 1)[-1] in IDLE_COMMANDS


def simulated_replica_usage(query: ReplicaUsageQuery, at: datetime) -> ReplicaUsage:
    """One simulated replica's usage: a busy one runs its GPUs and CPU as
    :func:`simulated_usage` runs a server's allocated share; an idle one's devices idle
    (0-2 %) and its CPU is at 0."""
    idle = replica_is_idle(query.command)
    load = ServerLoad(
        f"{query.server_id}:{query.workload_id}",
        0.0 if idle else 1.0,
        0.0,
        tuple(
            GpuLoad(gpu.index, 0 if idle else gpu.allocated_milli, gpu.memory_mib)
            for gpu in query.gpus
        ),
    )
    reading = simulated_usage(load, at)
    return ReplicaUsage(gpus=reading.gpus, cpu_pct=reading.cpu_used_pct)
