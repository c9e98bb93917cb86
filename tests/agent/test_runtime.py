"""DockerRuntime (the control plane's side) driving the two agents as two hosts."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from support.dockerd import DockerServer
from support.local_server import free_port

from gpuyard.runtimes.base import ReplicaSpec, Runtime
from gpuyard.runtimes.docker import AgentClient, AgentUnreachable, DockerRuntime

from .conftest import RunningAgent
from .test_containers import wait_http


@pytest.fixture
def runtime(agents: dict[str, RunningAgent]) -> Iterator[DockerRuntime]:
    clients = {name: agent.client() for name, agent in agents.items()}
    yield DockerRuntime(clients.__getitem__)
    for client in clients.values():
        client.close()


def replica_on(server: str, image: str, workload_id: str, host_port: int) -> ReplicaSpec:
    return ReplicaSpec(
        workload_id=workload_id,
        replica=0,
        image=image,
        command=["httpd", "-f", "-p", "80", "-h", "/workspace"],
        env={},
        ports=[80],
        server_name=server,
        cpu_milli=250,
        ram_mib=32,
        storage_mib=8,
        gpu_indices=[],
        host_ports={80: host_port},
    )


@pytest.mark.slow
def test_start_inspect_stop_on_two_hosts(
    runtime: DockerRuntime, agents: dict[str, RunningAgent], dockerd: DockerServer
) -> None:
    as_protocol: Runtime = runtime  # DockerRuntime satisfies the Runtime protocol
    workload = secrets.token_hex(16)
    ports = {"cpu-host": free_port(), "gpu-host": free_port()}

    handles = {
        server: as_protocol.start(replica_on(server, dockerd.image, workload, port))
        for server, port in ports.items()
    }

    assert handles["cpu-host"].startswith("cpu-host/")
    assert handles["gpu-host"].startswith("gpu-host/")
    for server, port in ports.items():
        agents[server].client().upload_file(workload, "index.html", server.encode())
        answer = wait_http(f"http://127.0.0.1:{port}/index.html")
        assert answer.text == server  # each host serves its own workspace
        info = runtime.inspect(handles[server])
        assert info is not None
        assert info.running
    assert [c.workload_id for c in runtime.containers("cpu-host") if c.workload_id == workload] == [
        workload
    ]

    as_protocol.stop(handles["cpu-host"], 1.0)
    stopped = runtime.inspect(handles["cpu-host"])
    assert stopped is not None
    assert stopped.state == "exited"
    assert stopped.exit_code is not None
    assert runtime.remove(handles["cpu-host"]) is True
    assert runtime.inspect(handles["cpu-host"]) is None
    as_protocol.stop(handles["cpu-host"], 1.0)  # stopping a vanished container is a no-op
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{ports['cpu-host']}/", timeout=1)
    assert runtime.inspect(handles["gpu-host"]) is not None  # the other host is untouched


def test_inventory_through_the_runtime(
    runtime: DockerRuntime, agents: dict[str, RunningAgent]
) -> None:
    gpu_host = runtime.inventory("gpu-host")
    cpu_host = runtime.inventory("cpu-host")
    # What only the agent says (not part of the runtime-neutral inventory).
    cpu_agent = agents["cpu-host"].client().inventory()

    assert [g.index for g in gpu_host.gpus] == [0, 1, 2, 3]
    assert gpu_host.reported_name == "gpu-host"
    assert cpu_agent.gpu_source == "none"  # this machine has no NVIDIA GPU
    assert cpu_host.gpus == ()
    assert cpu_agent.docker is not None
    assert cpu_agent.docker.nvidia_runtime is False
    assert cpu_host.cpu_count >= 1
    assert cpu_host.cpu_count == cpu_agent.cpu_count


def test_client_of_a_stopped_agent_is_unreachable(cpu_host: RunningAgent) -> None:
    client = AgentClient(f"http://127.0.0.1:{free_port()}", cpu_host.token, backoff_s=0.01)
    with pytest.raises(AgentUnreachable, match="unreachable"):
        client.inventory()
