"""Docker servers for tests that tick the loops by hand: real agents (the agent app in
uvicorn on 127.0.0.1, over the session's dockerd) registered in a context's docker
cluster; and an HTTP server that answers like no agent would, to stand for a broken one.

Each agent has a name of its own, so its containers (labelled with it) are this test's
only, and they are removed when the block ends.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container
from fastapi import FastAPI
from integration.cluster import Served
from support.dockerd import DockerServer

from factories.app import admin_caller
from gpuyard.agent.app import create_agent_app
from gpuyard.agent.gpus import GpuReport
from gpuyard.agent.settings import AgentSettings
from gpuyard.auth.caller import Caller
from gpuyard.domain.server_state import ClusterKind
from gpuyard.runtimes.docker import agent_connection
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import create_cluster
from gpuyard.services.fleet.reported_servers import (
    ReportedServerSpec,
    create_reported_server,
    reporting_runtime,
)


@dataclass
class Fleet:
    ctx: ServiceContext
    cluster_id: str
    #: Server name -> server id.
    servers: dict[str, str]
    docker: docker.DockerClient
    agent_names: list[str]

    def containers(self, workload_id: str) -> list[Container]:
        """The containers of ``workload_id`` on this fleet's agents, stopped ones too."""
        found: list[Container] = self.docker.containers.list(
            all=True, filters={"label": f"gpuyard.workload={workload_id}"}, ignore_removed=True
        )
        return [c for c in found if c.labels.get("gpuyard.agent") in self.agent_names]


def _no_gpus() -> GpuReport:
    return GpuReport(gpus=[], source="none")


@contextlib.contextmanager
def docker_fleet(
    ctx: ServiceContext,
    dockerd: DockerServer,
    base: Path,
    names: list[str],
    gpu_probe: Callable[[], GpuReport] = _no_gpus,
    admin: Caller | None = None,
) -> Iterator[Fleet]:
    """A docker cluster with one real agent per name in ``names``, registered in ``ctx``
    by ``admin`` (default: the first admin of ``factories.app``); their GPUs are what
    ``gpu_probe`` reports (none by default; a fake NVML for readings)."""
    client = docker.DockerClient(base_url=dockerd.url, timeout=60)
    served: list[Served] = []
    agent_names: list[str] = []
    try:
        cluster = create_cluster(ctx, admin or admin_caller(ctx), "docker", ClusterKind.DOCKER)
        servers = {}
        for name in names:
            agent_name = f"{name}-{uuid.uuid4().hex[:8]}"
            agent_names.append(agent_name)
            token = secrets.token_urlsafe(24)
            settings = AgentSettings(
                token=token,  # type: ignore[arg-type]
                name=agent_name,
                docker_host=dockerd.url,
                data_dir=base / agent_name,
            )

            def make_agent(settings: AgentSettings = settings) -> FastAPI:
                return create_agent_app(settings, client=client, gpu_probe=gpu_probe)

            agent = Served(make_agent)
            agent.start()
            served.append(agent)
            spec = ReportedServerSpec(name, cluster.id, agent_connection(agent.url, token))
            runtime = reporting_runtime(ctx, cluster)
            servers[name] = create_reported_server(ctx, None, spec, runtime).id
        yield Fleet(ctx, cluster.id, servers, client, agent_names)
    finally:
        for agent in served:
            agent.stop()
        for container in client.containers.list(all=True, ignore_removed=True):
            if container.labels.get("gpuyard.agent") in agent_names:
                container.remove(force=True)
        ctx.agents.close()
        client.close()


@contextlib.contextmanager
def garbage_agent() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every request 200 with JSON no agent would
    send (no inventory, no container list); yields its URL."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE"])
    def anything(path: str) -> dict[str, Any]:
        return {"garbage": path}

    server = Served(lambda: app)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
