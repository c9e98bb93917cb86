"""The Runtime protocol every backend implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    #: UUIDs of the reserved GPUs (same devices as gpu_indices), when the server reported them.
    gpu_uuids: Sequence[str] = ()
    #: container port -> host port allocated for it on the server (unique per server).
    host_ports: Mapping[int, int] = field(default_factory=dict)
    #: Capabilities beyond the runtime's minimal default set (admin-approved, e.g. SYS_CHROOT).
    cap_add: Sequence[str] = ()
    #: Process limit; None: the runtime's default.
    pids_limit: int | None = None


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
