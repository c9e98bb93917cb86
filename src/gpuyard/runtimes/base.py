"""The Runtime protocol every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ReplicaSpec:
    """Everything a runtime needs to start one replica, as recorded in the database."""

    workload_id: str
    replica: int
    name: str
    image: str
    command: Sequence[str] | None
    env: dict[str, str]
    ports: Sequence[int]
    server_name: str
    cpu_milli: int
    ram_mib: int
    storage_mib: int
    gpu_indices: Sequence[int]


class Runtime(Protocol):
    """Starts and stops replicas on the servers of one cluster kind."""

    #: True when start/stop take effect at once (no container to wait for), so the
    #: scheduler may record ``running`` in the same transaction as the reservation.
    starts_instantly: bool

    def start(self, spec: ReplicaSpec) -> str:
        """Start a replica; return a runtime handle (container id)."""
        ...

    def stop(self, handle: str, grace_period_s: float) -> None:
        """Stop a replica, giving it ``grace_period_s`` to exit."""
        ...
