"""A docker cluster in the browser tests' `gpuyard serve`: one real agent (in this
process, over the session's throwaway dockerd) registered over the API, for the pages
that need a real container (logs, terminal, files)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import pytest
from docker.models.containers import Container
from fastapi import FastAPI
from integration.cluster import Served, wait_for
from support.dockerd import DockerServer

from gpuyard.agent.app import create_agent_app
from gpuyard.agent.gpus import GpuReport
from gpuyard.agent.settings import AgentSettings

if TYPE_CHECKING:
    from web.conftest import LiveServer


@dataclass
class DockerCluster:
    id: str
    name: str
    #: The busybox image (made with `docker import`, no registry).
    image: str
    agent_name: str
    docker: docker.DockerClient
    #: The agent's data dir (its workloads' files directories are below it).
    data_dir: Path

    def container(self, workload_id: str) -> Container:
        """The running container of ``workload_id`` on this cluster's agent."""
        [found] = self.docker.containers.list(
            filters={
                "label": [f"gpuyard.workload={workload_id}", f"gpuyard.agent={self.agent_name}"]
            },
            ignore_removed=True,
        )
        return found


def _no_gpus() -> GpuReport:
    return GpuReport(gpus=[], source="none")


def launch(live_server: LiveServer, cluster: DockerCluster, name: str, **fields: Any) -> Any:
    """Submit a busybox workload to the docker cluster (``fields`` override the body)."""
    body = {"name": name, "image": cluster.image, "command": ["sleep", "3600"], "cpu": 0.1,
            "ram_gb": 0.0625, "cluster_id": cluster.id, **fields}  # fmt: skip
    return live_server.api("POST", "/workloads", json=body)


def wait_running(live_server: LiveServer, workload_id: str) -> Any:
    return wait_for(
        lambda: (
            (w := live_server.api("GET", f"/workloads/{workload_id}"))["status"] == "running" and w
        ),
        timeout=30,
        what=f"workload {workload_id} to run",
    )


@contextmanager
def registered_docker_cluster(
    dockerd: DockerServer, server: LiveServer, data_dir: Path, host_ports: str = "23000-23009"
) -> Iterator[DockerCluster]:
    """A real agent over ``dockerd`` (in this process) registered in ``server`` as a
    docker cluster of one server publishing ports in ``host_ports``; on exit its workloads
    are deleted, the agent stopped and its containers removed."""
    suffix = uuid.uuid4().hex[:6]
    agent_name = f"web-agent-{suffix}"
    token = f"token-{suffix}-0123456789abcdef"
    client = docker.DockerClient(base_url=dockerd.url, timeout=60)
    settings = AgentSettings(
        token=token, name=agent_name, docker_host=dockerd.url, data_dir=data_dir
    )

    def make_agent() -> FastAPI:
        return create_agent_app(settings, client=client, gpu_probe=_no_gpus)

    agent = Served(make_agent)
    agent.start()
    try:
        cluster = server.api(
            "POST", "/clusters", json={"name": f"docker-{suffix}", "kind": "docker"}
        )
        server.api(
            "POST",
            "/servers",
            json={
                "name": f"dock-{suffix}",
                "cluster_id": cluster["id"],
                "agent_url": agent.url,
                "agent_token": token,
                "host_ports": host_ports,
            },
        )
        yield DockerCluster(
            cluster["id"], cluster["name"], dockerd.image, agent_name, client, data_dir
        )
        workloads = server.api("GET", "/workloads", params={"cluster_id": cluster["id"]})
        for workload in workloads["data"]:
            server.api("DELETE", f"/workloads/{workload['id']}")
    finally:
        agent.stop()
        for container in client.containers.list(
            all=True, filters={"label": f"gpuyard.agent={agent_name}"}, ignore_removed=True
        ):
            container.remove(force=True)
        client.close()


@pytest.fixture(scope="session")
def docker_cluster(
    dockerd: DockerServer, live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerCluster]:
    with registered_docker_cluster(
        dockerd, live_server, Path(tmp_path_factory.mktemp("agent"))
    ) as cluster:
        yield cluster
