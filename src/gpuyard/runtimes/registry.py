"""The runtimes of a process, keyed by cluster kind.

Services never test a server's kind: they ask ``registry.for_kind(kind)`` for the runtime
of a server, and ``registry.kinds_where(...)`` for the kinds with a property (to filter
rows in SQL, e.g. the servers whose replicas need a container started).

Adding a runtime (kubernetes, issue 17) is one registration in ``default_registry``: an
object implementing ``gpuyard.runtimes.base.Runtime`` (capability flags, registration
checks and reach, start/stop, containers, inventory, logs, exec target, files) under its
``ClusterKind``. Its answers are ``gpuyard.domain.runtime_records`` values, never its
backend's wire format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gpuyard.domain.errors import NotFound
from gpuyard.domain.server_state import ClusterKind
from gpuyard.runtimes.base import Runtime
from gpuyard.runtimes.docker import AgentClient, DockerRuntime
from gpuyard.runtimes.kubernetes import KubeClientSource, KubernetesRuntime
from gpuyard.runtimes.simulated import SimulatedRuntime


def runs_containers(runtime: Runtime) -> bool:
    """Whether the runtime's replicas are containers that loops start, reconcile and
    remove (for ``kinds_where``)."""
    return runtime.runs_containers


def resizes_in_place(runtime: Runtime) -> bool:
    """Whether the runtime's running replicas change CPU and memory in place."""
    return runtime.resizes_in_place


def whole_gpus_only(runtime: Runtime) -> bool:
    """Whether the runtime's replicas take whole GPUs only (for ``kinds_where``)."""
    return runtime.whole_gpus_only


def capacity_shared(runtime: Runtime) -> bool:
    """Whether the runtime's servers' capacity is what other schedulers leave (for
    ``kinds_where``)."""
    return runtime.capacity_shared


def reports_inventory(runtime: Runtime) -> bool:
    """Whether the runtime reports its servers' capacity (for ``kinds_where``)."""
    return runtime.reports_inventory


class RuntimeRegistry:
    """Cluster kind -> the runtime running that kind's replicas (read-only once built)."""

    def __init__(self, runtimes: Mapping[str, Runtime]) -> None:
        self._runtimes = {str(kind): runtime for kind, runtime in runtimes.items()}

    def for_kind(self, kind: str) -> Runtime:
        """The runtime of ``kind`` (NotFound for a kind no runtime is registered for)."""
        runtime = self._runtimes.get(str(kind))
        if runtime is None:
            raise NotFound.for_object("runtime for cluster kind", str(kind))
        return runtime

    def get(self, kind: str) -> Runtime | None:
        """The runtime of ``kind``, or None when no runtime is registered for it."""
        return self._runtimes.get(str(kind))

    def kind_taking(self, connection_field: str) -> str | None:
        """The kind whose runtime takes the registration field ``connection_field``."""
        for kind, runtime in sorted(self._runtimes.items()):
            if connection_field in runtime.connection_fields:
                return kind
        return None

    def kinds_where(self, has: Callable[[Runtime], bool]) -> list[str]:
        """The kinds whose runtime ``has`` the property, e.g.
        ``kinds_where(runs_containers)``; sorted, for stable SQL."""
        return sorted(kind for kind, runtime in self._runtimes.items() if has(runtime))

    @property
    def kinds(self) -> list[str]:
        return sorted(self._runtimes)


def default_registry(
    agent_client_for: Callable[[str], AgentClient],
    kube_clients: KubeClientSource | None = None,
    kube_namespace: str = "gpuyard",
) -> RuntimeRegistry:
    """Every runtime gpuyard ships. ``agent_client_for(server_name)``: the (cached) client
    of a docker server's agent; ``kube_clients``: the API clients of kubernetes clusters
    (None: no kubernetes runtime), whose workloads without a team go to
    ``kube_namespace``."""
    runtimes: dict[str, Runtime] = {
        ClusterKind.SIMULATED: SimulatedRuntime(),
        ClusterKind.DOCKER: DockerRuntime(agent_client_for),
    }
    if kube_clients is not None:
        runtimes[ClusterKind.KUBERNETES] = KubernetesRuntime(kube_clients, kube_namespace)
    return RuntimeRegistry(runtimes)
