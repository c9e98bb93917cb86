"""GET /metrics: the host's figures in Prometheus's text format (the agent's token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gpuyard.agent.auth import require_token
from gpuyard.agent.errors import DOCKER_ERRORS
from gpuyard.agent.inventory import collect_inventory, docker_info_from
from gpuyard.agent.metrics import HostReading, render_host_metrics
from gpuyard.agent.models import ContainerInfo, DockerInfo
from gpuyard.agent.state import AgentDep, AgentState
from gpuyard.domain.errors import GpuyardError

router = APIRouter(tags=["metrics"], dependencies=[Depends(require_token)])
#: The classic text format (0.0.4), which every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def read_host(agent: AgentState) -> HostReading:
    """The inventory and this agent's containers, read now; Docker down is reported
    (``gpuyard_host_docker_up`` 0), never raised."""

    def docker_info() -> DockerInfo:
        return docker_info_from(agent.docker.info(), agent.docker.version())

    inventory = collect_inventory(
        agent_name=agent.settings.name,
        data_dir=agent.settings.data_dir,
        publish_address=agent.settings.publish_address,
        gpu_probe=agent.gpus.report,
        docker_info=docker_info,
    )
    containers: list[ContainerInfo] | None
    try:
        containers = agent.manager.list() if inventory.docker is not None else None
    except (GpuyardError, *DOCKER_ERRORS):
        containers = None
    return HostReading(inventory, containers)


@router.get("/metrics", include_in_schema=False)
async def get_metrics(agent: AgentDep) -> Response:
    """CPU, RAM, disk, each GPU (utilisation, memory, temperature, power) and the
    containers by state."""
    reading = await run_in_threadpool(read_host, agent)
    return Response(render_host_metrics(reading), media_type=CONTENT_TYPE)
