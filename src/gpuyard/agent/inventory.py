"""Host inventory: CPU, RAM and disk through psutil, GPUs through ``gpus``, Docker's facts."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from gpuyard import __version__
from gpuyard.agent.gpus import GpuReport
from gpuyard.agent.models import DockerInfo, Inventory

MIB = 1024 * 1024
GpuProbe = Callable[[], GpuReport]


def docker_info_from(info: dict[str, Any], version: dict[str, Any]) -> DockerInfo:
    """Condense ``docker info`` and ``docker version`` into what the control plane needs."""
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    status = dict(info.get("DriverStatus") or [])
    return DockerInfo(
        version=str(version.get("Version", "")),
        api_version=str(version.get("ApiVersion", "")),
        runtimes=runtimes,
        nvidia_runtime="nvidia" in runtimes,
        storage_driver=str(info.get("Driver", "")),
        backing_filesystem=status.get("Backing Filesystem"),
        cgroup_version=info.get("CgroupVersion"),
    )


def collect_inventory(
    *,
    agent_name: str,
    data_dir: Path,
    publish_address: str,
    gpu_probe: GpuProbe,
    docker_info: Callable[[], DockerInfo],
) -> Inventory:
    """Read the host now. A failing GPU probe or Docker is reported, never raised."""
    memory = psutil.virtual_memory()
    data_dir.mkdir(parents=True, exist_ok=True)
    disk = psutil.disk_usage(str(data_dir))
    report = gpu_probe()
    docker: DockerInfo | None = None
    docker_error: str | None = None
    try:
        docker = docker_info()
    except Exception as exc:  # Docker down is a fact to report, not an agent failure
        docker_error = str(exc) or type(exc).__name__
    return Inventory(
        agent_name=agent_name,
        agent_version=__version__,
        hostname=socket.gethostname(),
        cpu_count=psutil.cpu_count(logical=True) or 1,
        cpu_percent=psutil.cpu_percent(interval=None),
        ram_total_mib=memory.total // MIB,
        ram_available_mib=memory.available // MIB,
        disk_total_mib=disk.total // MIB,
        disk_free_mib=disk.free // MIB,
        gpus=report.gpus,
        gpu_source=report.source,
        gpu_driver_version=report.driver_version,
        gpu_error=report.error,
        docker=docker,
        docker_error=docker_error,
        publish_address=publish_address,
    )
