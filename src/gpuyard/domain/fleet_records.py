"""Read models of the fleet aggregates: clusters, servers with their GPUs, and servers'
status events, as services hand them to the API.

Pure data, built by the store (store/fleet.py, store/server_events.py) inside the session
that read it; times are UTC-aware. Secrets (agent tokens, kubeconfigs) are not part of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gpuyard.domain.resources import Resources


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    kind: str
    #: Whether a (write-only) kubeconfig is stored.
    has_kubeconfig: bool
    created_at: datetime


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    model: str
    memory_mib: int
    allocated_milli: int
    utilization_pct: float | None
    #: GPU memory reserved on it by shares that asked for some.
    allocated_memory_mib: int = 0


@dataclass(frozen=True)
class Server:
    """A server with its capacity and what is reserved on it, in stored units."""

    id: str
    name: str
    cluster_id: str
    status: str
    agent_url: str | None
    last_seen_at: datetime | None
    labels: Mapping[str, str]
    cpu_milli: int
    ram_mib: int
    storage_mib: int
    gpu_milli: int
    alloc_cpu_milli: int
    alloc_ram_mib: int
    alloc_storage_mib: int
    alloc_gpu_milli: int
    gpus: tuple[Gpu, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def capacity(self) -> Resources:
        return Resources(self.cpu_milli, self.ram_mib, self.storage_mib, self.gpu_milli)

    @property
    def allocated(self) -> Resources:
        return Resources(
            self.alloc_cpu_milli, self.alloc_ram_mib, self.alloc_storage_mib, self.alloc_gpu_milli
        )


@dataclass(frozen=True)
class ServerEvent:
    """One status change of a server, as callers see it."""

    id: int
    at: datetime
    from_status: str | None
    to_status: str
    reason: str | None
    details: dict[str, Any]
