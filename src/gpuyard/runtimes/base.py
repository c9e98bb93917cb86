"""The Runtime protocol every backend implements, and the errors it raises.

A runtime runs the replicas of the servers of one cluster kind. It is found through the
registry (``gpuyard.runtimes.registry``), never by testing a server's kind. Every method
but the capability flags may be network I/O: call it between transactions, never inside one.

Shapes: container listings and inventories are the agent's wire models
(``gpuyard.agent.models``, the one home of that contract); workspace files and exec targets
are plain values from ``gpuyard.domain.replica_access`` so that the api can relay them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gpuyard.agent.models import ContainerInfo, Inventory
from gpuyard.domain.replica_access import ExecTarget, WorkspaceFile, WorkspaceListing
from gpuyard.domain.usage import ServerLoad, UsageReading


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


class RuntimeFailure(Exception):
    """A runtime refused an operation, or failed it: ``status`` is HTTP-like (404: the
    container is gone, 4xx: final, 5xx: the backend's trouble), ``detail`` says why and
    ``errors`` name the offending fields (``{"field": ..., "message": ...}``)."""

    status: int
    title: str = "Runtime error"
    detail: str
    errors: list[dict[str, str]]


class RuntimeUnreachable(RuntimeFailure):
    """The backend did not answer (after its retries): worth trying again later."""


class Runtime(Protocol):
    """Runs the replicas of the servers of one cluster kind.

    A new runtime provides the three capability flags and every method below, and is
    registered under its cluster kind in ``gpuyard.runtimes.registry.default_registry``;
    services need nothing else. Failures are ``RuntimeFailure`` (``RuntimeUnreachable``
    when the backend does not answer); a server the runtime does not know is
    ``gpuyard.domain.errors.NotFound``. A runtime whose ``runs_containers`` is False has no
    containers: the container methods may then raise ``RuntimeFailure`` (409).
    """

    #: True when start/stop take effect at once (no container to wait for), so the
    #: scheduler may record ``running`` in the same transaction as the reservation.
    starts_instantly: bool
    #: True when replicas are containers (or pods): the starter loop creates them, the
    #: reconcile loop reads what they became, the cleanup loop removes them, host ports
    #: are allocated, logs/exec/files reach them, and ``duration_s`` is not virtual time.
    #: Its own flag, not ``not starts_instantly``: a runtime may start asynchronously
    #: without containers the loops manage.
    runs_containers: bool
    #: True when a server's capacity comes from the runtime's inventory (and the health
    #: loop probes it), False when it is declared at registration.
    reports_inventory: bool

    def start(self, spec: ReplicaSpec) -> str:
        """Start a replica (idempotent by workload + replica); return its handle."""
        ...

    def stop(self, handle: str, grace_period_s: float) -> None:
        """Stop a replica, giving it ``grace_period_s`` to exit (a vanished one is stopped)."""
        ...

    def remove(self, handle: str) -> bool:
        """Remove a replica's container (killing it if it runs); False if already gone."""
        ...

    def inspect(self, handle: str) -> ContainerInfo | None:
        """The container behind a handle, or None if it no longer exists."""
        ...

    def containers(self, server_name: str) -> list[ContainerInfo]:
        """Every gpuyard container on one server, stopped ones too (for reconcile)."""
        ...

    def handle_of(self, server_name: str, container_id: str) -> str:
        """The handle of a container ``containers(server_name)`` listed."""
        ...

    def container_id(self, handle: str) -> str:
        """The id (as ``containers`` lists it) of the container behind a handle."""
        ...

    def inventory(self, server_name: str, *, retry: bool = True) -> Inventory:
        """What the server has; ``retry=False`` for the health loop, which counts misses."""
        ...

    def estimate_usage(self, load: ServerLoad, at: datetime) -> UsageReading | None:
        """A server's usage as the runtime can tell it from its allocation alone, with no
        call to the server (the simulated runtime makes it up); None when its servers
        report real readings instead (docker: the health probe's inventory)."""
        ...

    def logs(
        self, handle: str, *, tail: int | None = None, follow: bool = False
    ) -> AbstractContextManager[Iterator[bytes]]:
        """``with runtime.logs(h) as chunks:`` the replica's output; ``follow`` streams
        until the ``with`` block is left."""
        ...

    def exec_target(self, handle: str, cmd: Iterable[str] | None = None) -> ExecTarget:
        """Where to open an interactive session in the replica (``cmd``: not a shell)."""
        ...

    def list_files(self, server_name: str, workload_id: str, path: str = "") -> WorkspaceListing:
        """One directory of the workload's workspace on that server."""
        ...

    def download_file(self, server_name: str, workload_id: str, path: str) -> bytes:
        """One file of the workload's workspace."""
        ...

    def upload_file(
        self,
        server_name: str,
        workload_id: str,
        path: str,
        content: bytes | Iterable[bytes],
        size: int | None = None,
    ) -> WorkspaceFile:
        """Write a file; an iterable ``content`` must start over at each iteration."""
        ...

    def delete_file(self, server_name: str, workload_id: str, path: str) -> None:
        """Delete one file of the workspace."""
        ...
