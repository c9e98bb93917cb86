"""What runtimes hand to services: the docker runtime's conversions of the agent's wire
models into runtime-neutral records, and each runtime's say on registration and ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.agent.models import ContainerInfo, GpuInfo, Inventory
from gpuyard.domain.errors import InvalidInput, NotFound
from gpuyard.domain.runtime_records import ReplicaState, ServerEndpoint
from gpuyard.runtimes.agent_records import host_inventory_of, observation_of, parse_docker_time
from gpuyard.runtimes.base import RegistrationFields, Runtime
from gpuyard.runtimes.docker import AgentClient, DockerRuntime
from gpuyard.runtimes.registry import default_registry
from gpuyard.runtimes.simulated import SimulatedRuntime


def no_agents(server_name: str) -> AgentClient:
    raise NotFound.for_object("docker server", server_name)


def container(**changes: object) -> ContainerInfo:
    values: dict[str, object] = {
        "id": "3f2a",
        "name": "gpuyard-w-0",
        "workload_id": "w",
        "replica": 2,
        "image": "busybox",
        "state": "exited",
        "running": False,
        "exit_code": 137,
        "oom_killed": True,
        "error": "",
        "created_at": "2026-12-04T08:00:05.123456789Z",
        "started_at": "2026-12-04T08:00:06Z",
        "finished_at": None,
        "labels": {"gpuyard.workload": "w", "gpuyard.replica": "2"},
    }
    values.update(changes)
    return ContainerInfo.model_validate(values)


def test_a_container_is_observed_in_the_neutral_shape() -> None:
    seen = observation_of(container())

    assert (seen.container_id, seen.workload_id, seen.replica) == ("3f2a", "w", 2)
    assert seen.state is ReplicaState.EXITED
    assert (seen.running, seen.exit_code, seen.oom_killed, seen.image) == (
        False,
        137,
        True,
        "busybox",
    )
    assert seen.created_at == datetime(2026, 12, 4, 8, 0, 5, 123456, tzinfo=UTC)
    assert seen.started_at == datetime(2026, 12, 4, 8, 0, 6, tzinfo=UTC)
    assert seen.finished_at is None
    assert dict(seen.labels) == {"gpuyard.workload": "w", "gpuyard.replica": "2"}
    assert seen.ended


@pytest.mark.parametrize(
    ("state", "exit_code", "ended"),
    [("running", None, False), ("exited", None, False), ("dead", 1, True), ("exited", 0, True)],
)
def test_ended_needs_a_final_state_and_an_exit_code(
    state: str, exit_code: int | None, ended: bool
) -> None:
    assert observation_of(container(state=state, exit_code=exit_code)).ended is ended


def test_a_state_docker_may_add_later_is_unknown_not_an_error() -> None:
    seen = observation_of(container(state="hibernating", created_at="not a time"))

    assert seen.state is ReplicaState.UNKNOWN
    assert seen.state_text == "hibernating"  # the real word is kept
    assert not seen.ended
    assert seen.created_at is None


@given(st.datetimes(timezones=st.just(UTC)), st.integers(min_value=0, max_value=999))
def test_docker_times_parse_to_the_same_instant_in_utc(at: datetime, nanos: int) -> None:
    """Docker's nanoseconds are cut to microseconds, and a time is always UTC-aware."""
    seconds = at.replace(tzinfo=None, microsecond=0).isoformat()
    text = f"{seconds}.{at.microsecond:06d}{nanos:03d}Z"

    parsed = parse_docker_time(text)

    assert parsed == at
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


def test_an_inventory_is_the_servers_capacity() -> None:
    inventory = Inventory(
        agent_name="gpu-host",
        agent_version="1",
        hostname="h",
        cpu_count=16,
        ram_total_mib=65536,
        ram_available_mib=1,
        disk_total_mib=102400,
        disk_free_mib=1,
        gpus=[
            GpuInfo(index=0, uuid="GPU-a", name="H100", memory_total_mib=81920),
            GpuInfo(
                index=1, uuid="GPU-b", name="H100", memory_total_mib=81920, utilization_gpu_pct=40
            ),
        ],
        gpu_source="nvml",
        publish_address="10.0.0.7",
    )

    host = host_inventory_of(inventory)

    assert host.reported_name == "gpu-host"
    assert host.capacity.cpu_milli == 16000
    assert (host.capacity.ram_mib, host.capacity.storage_mib) == (65536, 102400)
    assert host.capacity.gpu_milli == 2000
    assert [(g.index, g.uuid, g.model, g.memory_mib, g.utilization_pct) for g in host.gpus] == [
        (0, "GPU-a", "H100", 81920, None),
        (1, "GPU-b", "H100", 81920, 40.0),
    ]
    assert [g.allocated_milli for g in host.server_gpus()] == [0, 0]


def test_published_ports_are_reached_where_the_runtime_says() -> None:
    docker: Runtime = DockerRuntime(no_agents)
    simulated: Runtime = SimulatedRuntime()

    assert docker.ports_host(ServerEndpoint("http://10.0.0.7:8090", "t")) == "10.0.0.7"
    assert docker.ports_host(ServerEndpoint("https://gpu-1.example:443")) == "gpu-1.example"
    assert docker.ports_host(ServerEndpoint()) is None
    assert simulated.ports_host(ServerEndpoint("http://10.0.0.7:8090")) is None


def fields(**changes: object) -> RegistrationFields:
    values: dict[str, object] = {
        "cpu": None,
        "ram_gb": None,
        "gpus": 0,
        "host_ports": None,
        "connection": {"agent_url": None, "agent_token": None},
    }
    values.update(changes)
    return RegistrationFields(**values)  # type: ignore[arg-type]


def test_each_runtime_names_its_connection_fields() -> None:
    registry = default_registry(no_agents)

    assert registry.for_kind("docker").connection_fields == (
        "agent_url",
        "agent_token",
        "agent_tls_cert",
    )
    assert registry.kind_taking("agent_tls_cert") == "docker"
    assert registry.for_kind("simulated").connection_fields == ()
    assert registry.kind_taking("agent_token") == "docker"
    assert registry.kind_taking("kubeconfig") is None
    assert registry.get("kubernetes") is None


def test_the_docker_runtime_takes_its_agent_and_nothing_declared() -> None:
    docker = DockerRuntime(no_agents)
    agent = {"agent_url": "http://10.0.0.7:8090", "agent_token": "t"}

    docker.check_registration(fields(connection=agent, host_ports="30000-30010"))
    for changes, field in [
        ({"connection": agent, "cpu": 4}, "cpu"),
        ({"connection": agent, "gpus": 1}, "gpus"),
        ({"connection": {"agent_url": "http://x"}}, "agent_token"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            docker.check_registration(fields(**changes))
        assert [e.field for e in refused.value.errors] == [field]


def test_the_simulated_runtime_takes_declared_capacity_only() -> None:
    simulated = SimulatedRuntime()

    simulated.check_registration(fields(cpu=4, ram_gb=8, gpus=2))
    for changes, field in [
        ({"ram_gb": 8}, "cpu"),
        ({"cpu": 4, "ram_gb": 8, "host_ports": ""}, "host_ports"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            simulated.check_registration(fields(**changes))
        assert [e.field for e in refused.value.errors] == [field]
    with pytest.raises(Exception, match="declared"):
        simulated.reach("c", {})
