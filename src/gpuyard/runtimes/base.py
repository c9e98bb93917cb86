"""The Runtime protocol every backend implements, and the errors it raises.

A runtime runs the replicas of the servers of one cluster kind. It is found through the
registry (``gpuyard.runtimes.registry``), never by testing a server's kind. Every method
but the capability flags may be network I/O: call it between transactions, never inside one.

Shapes: what a runtime hands back is in no backend's wire format. Containers and
inventories are ``gpuyard.domain.runtime_records`` values (each runtime converts its
backend's answers at its own edge: the docker runtime from the agent's models); workspace
files and exec targets are plain values from ``gpuyard.domain.replica_access`` so that the
api can relay them.

Registering a server is the runtime's call too: it names the registration fields that say
where its servers are reached (``connection_fields``), refuses a registration that lacks
what it needs or gives what it does not take (``check_registration``), asks a new server
what it has (``reach``), and says where its replicas' published ports are reached
(``ports_host``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn, Protocol, runtime_checkable

from gpuyard.domain.cleanup_records import CleanupPolicy, HostCleanupReport
from gpuyard.domain.culling import ReplicaUsage, ReplicaUsageQuery
from gpuyard.domain.files_paths import DEFAULT_FILES_PATH
from gpuyard.domain.image_records import HostImage, ImageProgress, RegistryCredentials
from gpuyard.domain.replica_access import ExecTarget, WorkspaceFile, WorkspaceListing
from gpuyard.domain.runtime_records import (
    HostInventory,
    ReachedServer,
    ReplicaObservation,
    ServerEndpoint,
)
from gpuyard.domain.usage import ServerLoad, UsageReading


@dataclass(frozen=True)
class ReplicaSpec:
    """Everything a runtime needs to start one replica, as recorded in the database."""

    workload_id: str
    replica: int
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
    #: GPU memory a share reserved on its device (0: none); a runtime that can say so to
    #: the container does (docker: CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, cooperative).
    gpu_memory_mib: int = 0
    #: container port -> host port allocated for it on the server (unique per server).
    host_ports: Mapping[int, int] = field(default_factory=dict)
    #: Capabilities beyond the runtime's minimal default set (admin-approved, e.g. SYS_CHROOT).
    cap_add: Sequence[str] = ()
    #: Process limit; None: the runtime's default.
    pids_limit: int | None = None
    #: Labels of the runtime's own container beside gpuyard's (warm pools: the seed's
    #: ``pool``, ``type``, ``status``...), and its name (None: the runtime's default).
    labels: Mapping[str, str] = field(default_factory=dict)
    container_name: str | None = None
    #: Where the workload's files directory is mounted (checked by domain/files_paths.py).
    files_path: str = DEFAULT_FILES_PATH
    #: Where a runtime with namespaces puts it (kubernetes: the team's namespace, a
    #: DNS-1123 label); "" for the runtime's default.
    namespace: str = ""


@dataclass(frozen=True)
class RegistrationFields:
    """What a server registration gave, for the runtime of its cluster's kind to check
    before anything is asked or written."""

    cpu: float | None
    ram_gb: float | None
    #: How many GPUs it declares.
    gpus: int
    host_ports: str | None
    #: Every connection field the registration can give (any runtime's), by name; None
    #: where it gave none.
    connection: Mapping[str, str | None]


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

    A new runtime provides the three capability flags, its ``connection_fields`` and every
    method below, answering in ``gpuyard.domain.runtime_records`` values, and is
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
    #: True when a created replica is not yet running (a pod waits for its node to pull
    #: the image and start it): the starter leaves its workload ``starting`` and the
    #: reconcile loop moves it to ``running`` once every replica is seen running.
    running_when_observed: bool
    #: True when a running replica's CPU and memory can change in place (kubernetes: the
    #: pod's resize subresource): a PATCH that keeps its GPUs and storage calls ``resize``
    #: instead of replacing it.
    resizes_in_place: bool
    #: True when a replica's GPUs can only be whole devices (kubernetes: device plugins
    #: hand out whole ``nvidia.com/gpu``): a fractional GPU request on one of its
    #: clusters is refused at submit, naming ``gpu``.
    whole_gpus_only: bool
    #: True when a server's recorded capacity is what other schedulers leave free on it
    #: (kubernetes: a node's allocatable less its foreign pods' requests), so it grows
    #: when their work ends: the submit-time refusal of what could never run judges its
    #: servers by labels only, never by their size or GPUs.
    capacity_shared: bool
    #: True when a server's capacity comes from the runtime's inventory (and the health
    #: loop probes it), False when it is declared at registration.
    reports_inventory: bool
    #: The registration fields that say where one of its servers is reached (docker:
    #: ``agent_url`` and ``agent_token``); a registration for a cluster of another kind
    #: that gives them is refused. Empty when its servers need none (simulated).
    connection_fields: tuple[str, ...]

    def check_registration(self, fields: RegistrationFields) -> None:
        """Refuse (``InvalidInput`` naming the field) a registration of one of its servers
        that lacks what it needs or gives what it does not take; no I/O. (Other runtimes'
        connection fields are refused by the caller, which knows them all.)"""
        ...

    def reach(self, cluster_id: str, connection: Mapping[str, str]) -> ReachedServer:
        """Ask a server about to be registered in ``cluster_id`` what it has, through its
        ``connection_fields`` (as ``check_registration`` let them through), and say how
        to record where it is reached; ``InvalidInput`` naming the field at fault when it
        cannot. For runtimes that report inventory; network I/O, outside any transaction.
        (Kubernetes, issue 17: its nodes are reached through the cluster's kubeconfig.)"""
        ...

    def ports_host(self, endpoint: ServerEndpoint) -> str | None:
        """The host name a replica's published ports are reached at on a server recorded
        with ``endpoint`` (docker: the agent URL's host); None when it publishes none."""
        ...

    def start(self, spec: ReplicaSpec) -> str:
        """Start a replica (idempotent by workload + replica); return its handle."""
        ...

    def stop(self, handle: str, grace_period_s: float) -> None:
        """Stop a replica, giving it ``grace_period_s`` to exit (a vanished one is stopped)."""
        ...

    def resize(self, handle: str, cpu_milli: int, ram_mib: int) -> bool:
        """Give a running replica ``cpu_milli`` and ``ram_mib`` in place; False when the
        backend cannot (the caller replaces the replica). Only where ``resizes_in_place``."""
        ...

    def relabel(self, handle: str, labels: Mapping[str, str]) -> None:
        """Set ``labels`` over those the replica's container was created with (a warm
        pool container changing hands); what ``inspect`` and ``containers`` report
        afterwards carries them. A runtime without containers does nothing."""
        ...

    def remove(self, handle: str) -> bool:
        """Remove a replica's container (killing it if it runs); False if already gone."""
        ...

    def inspect(self, handle: str) -> ReplicaObservation | None:
        """The container behind a handle, or None if it no longer exists."""
        ...

    def containers(self, server_name: str) -> list[ReplicaObservation]:
        """Every gpuyard container on one server, stopped ones too (for reconcile)."""
        ...

    def handle_of(self, server_name: str, container_id: str) -> str:
        """The handle of a container ``containers(server_name)`` listed."""
        ...

    def container_id(self, handle: str) -> str:
        """The id (as ``containers`` lists it) of the container behind a handle."""
        ...

    def inventory(self, server_name: str, *, retry: bool = True) -> HostInventory:
        """What the server has; ``retry=False`` for the health loop, which counts misses."""
        ...

    def estimate_usage(self, load: ServerLoad, at: datetime) -> UsageReading | None:
        """A server's usage as the runtime can tell it from its allocation alone, with no
        call to the server (the simulated runtime makes it up); None when its servers
        report real readings instead (docker: the health probe's inventory)."""
        ...

    def replica_usage(self, query: ReplicaUsageQuery, at: datetime) -> ReplicaUsage | None:
        """What one replica uses now, for idle culling; None: this runtime has no signal
        for replicas (such a workload is never culled when idle)."""
        ...

    def logs(
        self, handle: str, *, tail: int | None = None, follow: bool = False
    ) -> AbstractContextManager[Iterator[bytes]]:
        """``with runtime.logs(h) as chunks:`` the replica's output; ``follow`` streams
        until the ``with`` block is left."""
        ...

    def exec_target(
        self, handle: str, cmd: Iterable[str] | None = None, tty: bool = True
    ) -> ExecTarget:
        """Where to open a session in the replica (``cmd``: not a shell; ``tty``: a
        terminal, else stdout and stderr as they come, for scripts)."""
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

    # -- images on a server (a runtime without images answers RuntimeFailure 409) -------

    def images(self, server_name: str) -> list[HostImage]:
        """The images present on the server."""
        ...

    def remove_image(self, server_name: str, reference: str, *, force: bool = False) -> None:
        """Remove the server's image ``reference`` (its tag; the image when it was the
        last); ``force`` also when a stopped container uses it."""
        ...

    def pull_image(
        self, server_name: str, reference: str, credentials: RegistryCredentials | None
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        """``with runtime.pull_image(...) as progress:`` the pull's progress; its last
        line is DONE or ERROR. A refusal before the pull begins raises on entering."""
        ...

    def build_image(
        self,
        server_name: str,
        tag: str,
        context: bytes | Iterable[bytes],
        size: int | None,
        dockerfile: str,
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        """Build ``tag`` from a tar of the build context (holding ``dockerfile``); the
        build's output as LOG lines, then DONE or ERROR. ``context`` as for uploads."""
        ...

    def push_image(
        self,
        server_name: str,
        source: str,
        target: str,
        credentials: RegistryCredentials | None,
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        """Tag the server's image ``source`` as ``target`` and push it; progress as for
        ``pull_image``."""
        ...


@runtime_checkable
class CleansHosts(Protocol):
    """A runtime whose servers can be cleaned of what gpuyard left there (stopped
    containers, dangling images, orphaned volumes and files directories). Apart from
    ``Runtime``: a runtime without it (kubernetes, for now) has no host cleanup, and the
    service refuses one with a 409."""

    def clean_host(self, server_name: str, policy: CleanupPolicy) -> HostCleanupReport:
        """List (``policy.dry_run``) or remove what gpuyard left on the server; one item
        that fails is reported and the others go on. Network I/O: outside transactions."""
        ...


class WithoutWorkspaceFiles:
    """The workspace-file methods of a runtime whose replicas have no files directory:
    each raises what the runtime's ``refuse_workspace_files`` raises."""

    def refuse_workspace_files(self) -> NoReturn:
        raise NotImplementedError

    def list_files(self, server_name: str, workload_id: str, path: str = "") -> WorkspaceListing:
        self.refuse_workspace_files()

    def download_file(self, server_name: str, workload_id: str, path: str) -> bytes:
        self.refuse_workspace_files()

    def upload_file(
        self,
        server_name: str,
        workload_id: str,
        path: str,
        content: bytes | Iterable[bytes],
        size: int | None = None,
    ) -> WorkspaceFile:
        self.refuse_workspace_files()

    def delete_file(self, server_name: str, workload_id: str, path: str) -> None:
        self.refuse_workspace_files()


class WithoutHostImages:
    """The image methods of a runtime whose servers keep no images gpuyard manages: each
    raises what the runtime's ``refuse_host_images`` raises."""

    def refuse_host_images(self) -> NoReturn:
        raise NotImplementedError

    def images(self, server_name: str) -> list[HostImage]:
        self.refuse_host_images()

    def remove_image(self, server_name: str, reference: str, *, force: bool = False) -> None:
        self.refuse_host_images()

    def pull_image(
        self, server_name: str, reference: str, credentials: RegistryCredentials | None
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        self.refuse_host_images()

    def build_image(
        self,
        server_name: str,
        tag: str,
        context: bytes | Iterable[bytes],
        size: int | None,
        dockerfile: str,
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        self.refuse_host_images()

    def push_image(
        self,
        server_name: str,
        source: str,
        target: str,
        credentials: RegistryCredentials | None,
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        self.refuse_host_images()
