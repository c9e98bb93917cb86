"""Liveness (no token: the control plane's health probe and load balancers use it)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from gpuyard import __version__
from gpuyard.agent.errors import DOCKER_ERRORS
from gpuyard.agent.state import AgentDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(agent: AgentDep) -> dict[str, str]:
    """The agent is up; ``docker`` says whether the Docker daemon answers a ping."""

    def ping() -> bool:
        try:
            return bool(agent.docker.ping())
        except DOCKER_ERRORS:
            return False

    docker_ok = await run_in_threadpool(ping)
    return {
        "status": "ok",
        "version": __version__,
        "agent": agent.settings.name,
        "docker": "ok" if docker_ok else "unavailable",
    }
