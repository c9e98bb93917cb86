"""Two agents on 127.0.0.1 acting as two hosts, over the session's real dockerd.

Each agent runs the real app in uvicorn (in a thread of the test process) with its own name,
token and data dir. Host "gpu-host" reports a fake inventory of 4 GPUs (this machine has
none), so the GPU path reaches Docker for real; host "cpu-host" probes GPUs for real.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest
import uvicorn
from support.dockerd import DockerServer
from support.local_server import free_port

from gpuyard.agent.app import create_agent_app
from gpuyard.agent.gpus import GpuReport, probe_gpus
from gpuyard.agent.inventory import GpuProbe
from gpuyard.agent.settings import AgentSettings
from gpuyard.runtimes.docker import AgentClient

from .builders import fake_gpus, make_token


@dataclass
class RunningAgent:
    name: str
    url: str
    token: str
    settings: AgentSettings
    docker: docker.DockerClient

    def client(self, **kwargs: object) -> AgentClient:
        return AgentClient(self.url, self.token, **kwargs)  # type: ignore[arg-type]

    def http(self) -> httpx.Client:
        """A plain HTTP client with the token (for status codes and problem bodies)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


@contextlib.contextmanager
def run_agent(
    dockerd: DockerServer, data_dir: Path, name: str, gpu_probe: GpuProbe, **settings: object
) -> Iterator[RunningAgent]:
    """Serve one agent app on a free 127.0.0.1 port until the block ends."""
    token = make_token()
    config = AgentSettings(
        token=token,  # type: ignore[arg-type]
        name=name,
        docker_host=dockerd.url,
        data_dir=data_dir,
        port=free_port(),
        **settings,  # type: ignore[arg-type]
    )
    client = docker.DockerClient(base_url=dockerd.url, timeout=60)
    app = create_agent_app(config, client=client, gpu_probe=gpu_probe)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name=f"agent-{name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"agent {name} did not start")
        time.sleep(0.01)
    try:
        yield RunningAgent(name, f"http://127.0.0.1:{config.port}", token, config, client)
    finally:
        server.should_exit = True
        thread.join(10)
        _remove_containers_of(client, name)
        client.close()


def _remove_containers_of(client: docker.DockerClient, agent_name: str) -> None:
    """The agent's containers go with it, so a long test session does not keep them running."""
    found = client.containers.list(
        all=True, filters={"label": f"gpuyard.agent={agent_name}"}, ignore_removed=True
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda container: container.remove(force=True), found))


def _four_gpus() -> GpuReport:
    return GpuReport(gpus=fake_gpus(4), source="nvml", driver_version="580.159.04")


@pytest.fixture(scope="module")
def agents(
    dockerd: DockerServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningAgent]]:
    """{"gpu-host": ..., "cpu-host": ...}; cpu-host allows 1 MiB uploads at most."""
    base = tmp_path_factory.mktemp("agents")
    with (
        run_agent(dockerd, base / "gpu", "gpu-host", _four_gpus) as gpu_host,
        run_agent(dockerd, base / "cpu", "cpu-host", probe_gpus, max_upload_mib=1) as cpu_host,
    ):
        yield {"gpu-host": gpu_host, "cpu-host": cpu_host}


@pytest.fixture
def gpu_host(agents: dict[str, RunningAgent]) -> RunningAgent:
    return agents["gpu-host"]


@pytest.fixture
def cpu_host(agents: dict[str, RunningAgent]) -> RunningAgent:
    return agents["cpu-host"]
