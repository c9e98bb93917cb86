"""The simulated runtime: servers are records and replicas run in virtual time.

Starting and stopping take effect at once; a workload with ``duration_s`` succeeds that
long after it started (the lifecycle loop does that). Used by ``--demo``, tests and
benchmarks. Its replicas have no container: no logs, shell, files or inventory (their
log is the lifecycle, ``services.workloads.logs``; their capacity is declared at
registration, and they are reached through nothing). For idle culling, a replica whose
command is ``sleep ...`` does nothing (its GPUs and CPU idle); any other works at its
allocation (``simulated_usage.simulated_replica_usage``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import NoReturn

from gpuyard.domain.cleanup_records import CleanupPolicy, HostCleanupReport
from gpuyard.domain.culling import ReplicaUsage, ReplicaUsageQuery
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.replica_access import ExecTarget
from gpuyard.domain.runtime_records import (
    HostInventory,
    ReachedServer,
    ReplicaObservation,
    ServerEndpoint,
)
from gpuyard.domain.usage import ServerLoad, UsageReading
from gpuyard.runtimes.base import (
    RegistrationFields,
    ReplicaSpec,
    RuntimeFailure,
    WithoutHostImages,
    WithoutWorkspaceFiles,
)
from gpuyard.runtimes.simulated_usage import simulated_replica_usage, simulated_usage


class NoContainer(RuntimeFailure):
    """What a simulated replica answers when asked for its container (409)."""

    title = "No container"

    def __init__(self, what: str) -> None:
        super().__init__(f"simulated replicas have no {what}")
        self.status = 409
        self.detail = f"simulated replicas have no {what}"
        self.errors = []


class SimulatedRuntime(WithoutWorkspaceFiles, WithoutHostImages):
    starts_instantly = True
    runs_containers = False
    running_when_observed = False
    resizes_in_place = False
    whole_gpus_only = False
    capacity_shared = False
    reports_inventory = False
    connection_fields: tuple[str, ...] = ()

    def refuse_workspace_files(self) -> NoReturn:
        raise NoContainer("workspace")

    def refuse_host_images(self) -> NoReturn:
        failure = NoContainer("images")
        failure.detail = "a simulated server has no images: it runs no containers"
        raise failure

    def check_registration(self, fields: RegistrationFields) -> None:
        """A simulated server declares its capacity and publishes no ports."""
        if fields.host_ports is not None:
            raise InvalidInput.for_field("host_ports", "only docker servers publish ports")
        for name, declared in (("cpu", fields.cpu), ("ram_gb", fields.ram_gb)):
            if declared is None:
                raise InvalidInput.for_field(name, "field required")

    def reach(self, cluster_id: str, connection: Mapping[str, str]) -> ReachedServer:
        raise NoContainer("inventory (their capacity is declared)")

    def ports_host(self, endpoint: ServerEndpoint) -> str | None:
        return None

    def start(self, spec: ReplicaSpec) -> str:
        return f"sim-{spec.workload_id[:12]}-{spec.replica}"

    def stop(self, handle: str, grace_period_s: float) -> None:
        return None

    def resize(self, handle: str, cpu_milli: int, ram_mib: int) -> bool:
        return False  # a container keeps the limits it was created with: replaced

    def relabel(self, handle: str, labels: Mapping[str, str]) -> None:
        return None  # no container to label

    def remove(self, handle: str) -> bool:
        return False  # nothing was ever created

    def inspect(self, handle: str) -> ReplicaObservation | None:
        return None

    def containers(self, server_name: str) -> list[ReplicaObservation]:
        return []

    def handle_of(self, server_name: str, container_id: str) -> str:
        raise NoContainer("containers")

    def container_id(self, handle: str) -> str:
        raise NoContainer("containers")

    def inventory(self, server_name: str, *, retry: bool = True) -> HostInventory:
        raise NoContainer("inventory (their capacity is declared)")

    def estimate_usage(self, load: ServerLoad, at: datetime) -> UsageReading | None:
        return simulated_usage(load, at)

    def clean_host(self, server_name: str, policy: CleanupPolicy) -> HostCleanupReport:
        """Nothing to clean, said honestly: its replicas leave nothing behind."""
        return HostCleanupReport(
            dry_run=policy.dry_run,
            note="nothing to clean: a simulated server keeps no containers, images, "
            "volumes or files",
        )

    def replica_usage(self, query: ReplicaUsageQuery, at: datetime) -> ReplicaUsage | None:
        return simulated_replica_usage(query, at)

    def logs(
        self, handle: str, *, tail: int | None = None, follow: bool = False
    ) -> AbstractContextManager[Iterator[bytes]]:
        raise NoContainer("container output")

    def exec_target(
        self, handle: str, cmd: Iterable[str] | None = None, tty: bool = True
    ) -> ExecTarget:
        raise NoContainer("shell")
