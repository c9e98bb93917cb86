"""The agent's FastAPI application."""

from __future__ import annotations

import math

import docker
from docker.errors import DockerException
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from gpuyard import __version__
from gpuyard.agent.auth import require_token
from gpuyard.agent.cleanup import HostCleaner
from gpuyard.agent.containers import ContainerManager
from gpuyard.agent.files import Workspaces
from gpuyard.agent.gpus import probe_gpus
from gpuyard.agent.host_config import HostPolicy
from gpuyard.agent.images import ImageManager
from gpuyard.agent.inventory import GpuProbe
from gpuyard.agent.label_overlay import FILE_NAME as OVERLAY_FILE
from gpuyard.agent.label_overlay import LabelOverlays
from gpuyard.agent.models import LABEL_AGENT
from gpuyard.agent.problems import install_problem_handlers
from gpuyard.agent.routers import (
    cleanup,
    containers,
    exec,
    files,
    health,
    images,
    inventory,
    metrics,
)
from gpuyard.agent.settings import AgentSettings
from gpuyard.agent.state import AgentState, GpuCache

MIB = 1024 * 1024
#: The API version the agent falls back to when Docker is down at start (Docker 20.10; GPU
#: DeviceRequests need 1.40 or later). With Docker up, the version is negotiated.
FALLBACK_API_VERSION = "1.41"


def docker_client(settings: AgentSettings, timeout_s: float | None = None) -> docker.DockerClient:
    """A client for the configured daemon; starts even when Docker is down (reported later).
    ``timeout_s``: its HTTP read timeout (default ``docker_timeout_s``)."""
    base_url = settings.docker_host
    timeout = max(1, math.ceil(timeout_s or settings.docker_timeout_s))
    try:
        if base_url is None:
            return docker.from_env(timeout=timeout)
        return docker.DockerClient(base_url=base_url, timeout=timeout)
    except DockerException:
        if base_url is None:
            return docker.from_env(timeout=timeout, version=FALLBACK_API_VERSION)
        return docker.DockerClient(base_url=base_url, timeout=timeout, version=FALLBACK_API_VERSION)


def _operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"agent-{tag}-{route.name}"


def create_agent_app(
    settings: AgentSettings,
    *,
    client: docker.DockerClient | None = None,
    gpu_probe: GpuProbe = probe_gpus,
) -> FastAPI:
    """The agent app over one Docker daemon; ``gpu_probe`` is replaceable for tests."""
    client = client or docker_client(settings)
    workspaces = Workspaces(
        root=settings.workloads_dir,
        max_upload_bytes=settings.max_upload_mib * MIB,
        default_quota_bytes=settings.default_workspace_mib * MIB,
    )
    gpus = GpuCache(gpu_probe)
    policy = HostPolicy(
        agent_name=settings.name,
        publish_address=settings.publish_address,
        default_pids_limit=settings.default_pids_limit,
        storage_opt_size=settings.storage_opt_size,
    )
    app = FastAPI(
        title="gpuyard agent",
        version=__version__,
        description=(
            "Per-host agent: inventory, containers, logs, exec, files, images and cleanup."
        ),
        generate_unique_id_function=_operation_id,
    )
    app.state.agent = AgentState(
        settings=settings,
        token=settings.token.get_secret_value(),
        docker=client,
        manager=ContainerManager(
            client,
            policy,
            workspaces,
            gpus.gpus,
            LabelOverlays(settings.data_dir / OVERLAY_FILE),
        ),
        # Image streams get a client of their own whose read timeout is the operation's
        # deadline: a push whose registry goes quiet for a minute is not cut at 60 s.
        images=ImageManager(
            client,
            settings.image_deadline_s,
            streams=docker_client(
                settings, max(settings.image_deadline_s, settings.docker_timeout_s)
            ),
            # Its builds carry the agent's label: the host cleanup removes only images
            # with it once they are dangling.
            build_labels={LABEL_AGENT: settings.name},
        ),
        workspaces=workspaces,
        gpus=gpus,
        cleaner=HostCleaner(client, settings.name, workspaces),
    )
    install_problem_handlers(app)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])
    for module in (inventory, containers, files, images, cleanup):
        v1.include_router(module.router)
    app.include_router(v1)
    # WebSocket routes check the token themselves (a dependency cannot answer 401 there).
    app.include_router(exec.router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(metrics.router)  # GET /metrics, behind the token as /v1 is
    return app
