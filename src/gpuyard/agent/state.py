"""What the agent's routes share: settings, Docker, the container manager, workspaces, GPUs."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated

import docker
from fastapi import Depends
from starlette.requests import HTTPConnection

from gpuyard.agent.cleanup import HostCleaner
from gpuyard.agent.containers import ContainerManager
from gpuyard.agent.files import Workspaces
from gpuyard.agent.gpus import GpuReport
from gpuyard.agent.images import ImageManager
from gpuyard.agent.inventory import GpuProbe
from gpuyard.agent.models import GpuInfo
from gpuyard.agent.settings import AgentSettings


class GpuCache:
    """The last GPU report, re-probed when older than ``ttl_s`` (NVML init is not free)."""

    def __init__(self, probe: GpuProbe, ttl_s: float = 5.0) -> None:
        self._probe = probe
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._report: GpuReport | None = None
        self._at = 0.0

    def report(self) -> GpuReport:
        with self._lock:
            if self._report is None or time.monotonic() - self._at > self._ttl_s:
                self._report = self._probe()
                self._at = time.monotonic()
            return self._report

    def gpus(self) -> list[GpuInfo]:
        return self.report().gpus


@dataclass
class AgentState:
    settings: AgentSettings
    token: str
    docker: docker.DockerClient
    manager: ContainerManager
    images: ImageManager
    workspaces: Workspaces
    gpus: GpuCache
    cleaner: HostCleaner


def agent_state(connection: HTTPConnection) -> AgentState:
    """The agent's shared state (a dependency for HTTP and WebSocket routes alike)."""
    state: AgentState = connection.app.state.agent
    return state


AgentDep = Annotated[AgentState, Depends(agent_state)]
