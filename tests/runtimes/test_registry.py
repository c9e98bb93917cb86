"""The runtime registry: one runtime per cluster kind, found by kind or by property."""

from __future__ import annotations

import pytest

from gpuyard.domain.errors import NotFound
from gpuyard.domain.server_state import ClusterKind
from gpuyard.runtimes.base import ReplicaSpec, Runtime, RuntimeFailure
from gpuyard.runtimes.docker import AgentClient, DockerRuntime
from gpuyard.runtimes.kubernetes import KubernetesRuntime
from gpuyard.runtimes.registry import (
    RuntimeRegistry,
    default_registry,
    reports_inventory,
    runs_containers,
)
from gpuyard.runtimes.simulated import SimulatedRuntime


def no_agents(server_name: str) -> AgentClient:
    raise NotFound.for_object("docker server", server_name)


def spec() -> ReplicaSpec:
    return ReplicaSpec(
        workload_id="w" * 32,
        replica=1,
        image="busybox",
        command=None,
        env={},
        ports=[],
        server_name="sim-1",
        cpu_milli=100,
        ram_mib=16,
        storage_mib=0,
        gpu_indices=[],
    )


def test_the_default_registry_has_a_runtime_per_shipped_kind() -> None:
    registry = default_registry(no_agents)

    assert isinstance(registry.for_kind(ClusterKind.SIMULATED), SimulatedRuntime)
    assert isinstance(registry.for_kind("docker"), DockerRuntime)
    assert registry.kinds == ["docker", "simulated"]


class NoClusters:
    """A kubernetes client source with no cluster: every lookup is NotFound."""

    def api_client(self, cluster_id: str) -> object:
        raise NotFound.for_object("kubernetes cluster", cluster_id)

    def cluster_of(self, server_name: str) -> str:
        raise NotFound.for_object("server", server_name)


def test_the_kubernetes_runtime_is_registered_with_its_clients() -> None:
    registry = default_registry(no_agents, NoClusters(), "spare")  # type: ignore[arg-type]

    runtime = registry.for_kind(ClusterKind.KUBERNETES)
    assert isinstance(runtime, KubernetesRuntime)
    assert runtime.default_namespace == "spare"
    assert registry.kinds == ["docker", "kubernetes", "simulated"]
    assert registry.kinds_where(runs_containers) == ["docker", "kubernetes"]
    assert registry.kinds_where(reports_inventory) == ["docker", "kubernetes"]
    assert registry.kinds_where(lambda r: r.running_when_observed) == ["kubernetes"]
    assert registry.kind_taking("agent_url") == "docker"


def test_kinds_are_found_by_property() -> None:
    registry = default_registry(no_agents)

    assert registry.kinds_where(runs_containers) == ["docker"]
    assert registry.kinds_where(reports_inventory) == ["docker"]
    assert registry.kinds_where(lambda r: r.starts_instantly) == ["simulated"]


def test_runs_containers_is_its_own_flag() -> None:
    """A runtime that starts asynchronously without loop-managed containers is not a
    container runtime (the flag is not derived from ``starts_instantly``)."""

    class Deferred(SimulatedRuntime):
        starts_instantly = False

    registry = RuntimeRegistry({"docker": DockerRuntime(no_agents), "deferred": Deferred()})

    assert registry.kinds_where(runs_containers) == ["docker"]


def test_a_kind_without_a_runtime_is_not_found() -> None:
    registry = default_registry(no_agents)

    with pytest.raises(NotFound, match="kubernetes"):
        registry.for_kind(ClusterKind.KUBERNETES)


def test_adding_a_runtime_is_one_registration() -> None:
    class Instant(SimulatedRuntime):
        pass

    runtime: Runtime = Instant()
    registry = RuntimeRegistry({ClusterKind.SIMULATED: SimulatedRuntime(), "kubernetes": runtime})

    assert registry.for_kind("kubernetes") is runtime
    assert registry.kinds_where(runs_containers) == []


def test_simulated_replicas_start_at_once_and_have_no_container() -> None:
    runtime: Runtime = SimulatedRuntime()

    handle = runtime.start(spec())
    runtime.stop(handle, 5.0)

    assert handle == f"sim-{'w' * 12}-1"
    assert runtime.containers("sim-1") == []
    assert runtime.inspect(handle) is None
    assert runtime.remove(handle) is False
    with pytest.raises(RuntimeFailure) as refused:
        runtime.list_files("sim-1", "w" * 32)
    assert refused.value.status == 409
    with pytest.raises(RuntimeFailure):
        runtime.exec_target(handle)
    with pytest.raises(RuntimeFailure):
        runtime.inventory("sim-1")


def test_a_docker_server_without_an_agent_is_not_found() -> None:
    runtime = default_registry(no_agents).for_kind("docker")

    with pytest.raises(NotFound):
        runtime.containers("gpu-9")
