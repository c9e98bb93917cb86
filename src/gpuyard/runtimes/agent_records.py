"""The docker agent's wire models (agent/models.py) in the runtime-neutral shapes of
domain/: containers as ReplicaObservations, inventories as HostInventories with their
usage. The docker runtime converts at its edge with these; nothing above runtimes/ sees
the wire models."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from gpuyard.agent.models import ContainerInfo, Inventory
from gpuyard.domain.runtime_records import HostGpu, HostInventory, ReplicaObservation, ReplicaState
from gpuyard.domain.usage import GpuReading, UsageReading, percent


def parse_docker_time(value: str | None) -> datetime | None:
    """A time as Docker reports it (RFC 3339 in nanoseconds), in UTC; None when absent or
    not a time."""
    if not value:
        return None
    # Docker reports nanoseconds ("...:05.123456789Z"); Python parses microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def observation_of(info: ContainerInfo) -> ReplicaObservation:
    """A container as the agent reports it, in the runtime-neutral shape."""
    return ReplicaObservation(
        container_id=info.id,
        workload_id=info.workload_id,
        replica=info.replica,
        state=ReplicaState.of(info.state),
        state_text=info.state,
        running=info.running,
        image=info.image,
        exit_code=info.exit_code,
        oom_killed=info.oom_killed,
        error=info.error,
        created_at=parse_docker_time(info.created_at),
        started_at=parse_docker_time(info.started_at),
        finished_at=parse_docker_time(info.finished_at),
        labels=dict(info.labels),
    )


def host_inventory_of(inventory: Inventory) -> HostInventory:
    """What an agent says its host has, in the runtime-neutral shape (the filesystem of
    the agent's data directory is the server's storage)."""
    return HostInventory(
        reported_name=inventory.agent_name,
        cpu_count=inventory.cpu_count,
        ram_mib=inventory.ram_total_mib,
        storage_mib=inventory.disk_total_mib,
        gpus=tuple(
            HostGpu(
                index=gpu.index,
                uuid=gpu.uuid,
                model=gpu.name,
                memory_mib=gpu.memory_total_mib or 0,
                utilization_pct=gpu.utilization_gpu_pct,
            )
            for gpu in inventory.gpus
        ),
        usage=reading_from_inventory(inventory),
    )


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
