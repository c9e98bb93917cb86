"""A real control plane (uvicorn, loops with short intervals) over two real agents that
act as two hosts of one docker cluster, on the session's dockerd."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import uvicorn
from factories.app import ADMIN_EMAIL, make_context, make_settings, mint_token, user_id_of
from fastapi import FastAPI
from support.dockerd import DockerServer
from support.local_server import free_port

from gpuyard.agent.app import create_agent_app
from gpuyard.agent.gpus import GpuReport
from gpuyard.agent.settings import AgentSettings
from gpuyard.api.app import create_app
from gpuyard.services.context import ServiceContext

#: Short loop intervals so that three missed probes and a recovery take about a second.
FAST_LOOPS: dict[str, Any] = {
    "run_loops": True,
    "demo": False,
    "scheduler_interval_s": 0.3,
    "starter_interval_s": 0.3,
    "health_interval_s": 0.3,
    "reconcile_interval_s": 0.5,
    "cleanup_interval_s": 0.3,
    "stop_grace_period_s": 1.0,
    "orphan_grace_s": 2.0,
}


class Served:
    """An ASGI app in uvicorn on a free 127.0.0.1 port, in a thread; stop and start again
    on the same port (an agent going away and coming back)."""

    def __init__(self, make_app: Callable[[], FastAPI], port: int | None = None) -> None:
        self._make_app = make_app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self._make_app(), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server and self._thread:
            self._server.should_exit = True
            self._thread.join(15)
        self._server = self._thread = None


@dataclass
class Host:
    name: str
    token: str
    served: Served
    port_range: str
    docker: docker.DockerClient


@dataclass
class Plane:
    ctx: ServiceContext
    api: httpx.Client
    url: str
    token: str
    hosts: dict[str, Host] = field(default_factory=dict)

    def workload(self, workload_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/workloads/{workload_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _no_gpus() -> GpuReport:
    return GpuReport(gpus=[], source="none")


@contextlib.contextmanager
def run_plane(dockerd: DockerServer, base: Path) -> Iterator[Plane]:
    """Two hosts (agents), the control plane with loops, the docker cluster registered."""
    client = docker.DockerClient(base_url=dockerd.url, timeout=60)
    hosts: dict[str, Host] = {}
    for name, port_range in (("host-a", "21000-21009"), ("host-b", "22000-22009")):
        token = f"token-{name}-0123456789abcdef"
        settings = AgentSettings(
            token=token,  # type: ignore[arg-type]
            name=name,
            docker_host=dockerd.url,
            data_dir=base / name,
        )

        def make_agent(settings: AgentSettings = settings) -> FastAPI:
            return create_agent_app(settings, client=client, gpu_probe=_no_gpus)

        served = Served(make_agent)
        served.start()
        hosts[name] = Host(name, token, served, port_range, client)
    ctx = make_context(make_settings(base / "plane", None, **FAST_LOOPS))
    plane_server = Served(lambda: create_app(ctx))
    plane_server.start()
    token = mint_token(ctx, user_id_of(ctx, ADMIN_EMAIL))
    api = httpx.Client(
        base_url=plane_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    try:
        cluster = api.post("/api/v1/clusters", json={"name": "docker", "kind": "docker"})
        assert cluster.status_code == 201, cluster.text
        for host in hosts.values():
            body = {
                "name": host.name,
                "cluster_id": cluster.json()["id"],
                "agent_url": host.served.url,
                "agent_token": host.token,
                "host_ports": host.port_range,
            }
            response = api.post("/api/v1/servers", json=body)
            assert response.status_code == 201, response.text
        yield Plane(ctx, api, plane_server.url, token, hosts)
    finally:
        api.close()
        plane_server.stop()
        for host in hosts.values():
            host.served.stop()
        for container in client.containers.list(
            all=True, filters={"label": "gpuyard.agent"}, ignore_removed=True
        ):
            if container.labels.get("gpuyard.agent") in hosts:
                container.remove(force=True)
        ctx.agents.close()
        client.close()
