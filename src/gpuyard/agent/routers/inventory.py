"""GET /v1/inventory: CPU, RAM, disk, GPUs and Docker's facts, read now."""

from __future__ import annotations

from fastapi import APIRouter

from gpuyard.agent.inventory import collect_inventory, docker_info_from
from gpuyard.agent.models import DockerInfo, Inventory
from gpuyard.agent.state import AgentDep

router = APIRouter(tags=["inventory"])


@router.get("/inventory")
def get_inventory(agent: AgentDep) -> Inventory:
    """What this host has; a failing GPU probe or Docker is reported in the body, not raised."""

    def docker_info() -> DockerInfo:
        return docker_info_from(agent.docker.info(), agent.docker.version())

    return collect_inventory(
        agent_name=agent.settings.name,
        data_dir=agent.settings.data_dir,
        publish_address=agent.settings.publish_address,
        gpu_probe=agent.gpus.report,
        docker_info=docker_info,
    )
