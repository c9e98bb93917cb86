"""The agent's wire contract: what the control plane sends and what the agent answers.

Imported by both sides (the agent's routers and ``gpuyard.runtimes.docker.AgentClient``), so
the two cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gpuyard.domain.files_paths import (
    DEFAULT_FILES_PATH,
    MAX_FILES_PATH_LENGTH,
    files_path_problem,
)

#: Labels on every container the agent creates.
LABEL_WORKLOAD = "gpuyard.workload"
LABEL_REPLICA = "gpuyard.replica"
LABEL_AGENT = "gpuyard.agent"
LABEL_GPUS = "gpuyard.gpus"
RESERVED_LABEL_PREFIX = "gpuyard."

#: Docker's own rule for container names, bounded.
CONTAINER_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"
WORKLOAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_WORKLOAD_ID = re.compile(WORKLOAD_ID_PATTERN)

#: Linux capability names an admin may add (without the CAP_ prefix).
KNOWN_CAPABILITIES = frozenset((
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
    "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
    "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT",
    "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG",
    "WAKE_ALARM",
))  # fmt: skip


def is_workload_id(value: str) -> bool:
    """Whether ``value`` is a workload id the agent accepts (also a safe directory name)."""
    return bool(_WORKLOAD_ID.match(value))


class PortSpec(BaseModel):
    """One published port: container_port inside, host_port on the agent's publish address."""

    model_config = ConfigDict(extra="forbid")

    container_port: int = Field(ge=1, le=65535)
    host_port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"


class ContainerSpec(BaseModel):
    """One replica to run, with the limits of its reservation."""

    model_config = ConfigDict(extra="forbid")

    workload_id: str = Field(pattern=WORKLOAD_ID_PATTERN)
    replica: int = Field(default=0, ge=0, le=10_000)
    image: str = Field(min_length=1, max_length=512)
    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)
    cpu_milli: int = Field(default=0, ge=0, description="0: no CPU limit")
    ram_mib: int = Field(default=0, ge=0, description="0: no memory limit")
    storage_mib: int = Field(default=0, ge=0, description="workspace quota; 0: agent default")
    pids_limit: int | None = Field(default=None, gt=0, description="None: agent default")
    gpu_indices: list[int] = Field(default_factory=list)
    gpu_uuids: list[str] = Field(default_factory=list)
    cap_add: list[str] = Field(default_factory=list, description="beyond the default set; admin")
    labels: dict[str, str] = Field(default_factory=dict)
    #: The container's name; None: ``gy-<agent>-<workload>-<replica>`` (warm pool
    #: containers are named ``pool_<type>_<index>_<port>``).
    name: str | None = Field(default=None, pattern=CONTAINER_NAME_PATTERN)
    #: Where the workload's files directory is mounted; the agent holds the control
    #: plane's policy too (domain/files_paths.py), since it is what mounts it.
    files_path: str = Field(
        default=DEFAULT_FILES_PATH, min_length=2, max_length=MAX_FILES_PATH_LENGTH
    )

    @field_validator("files_path")
    @classmethod
    def _safe_files_path(cls, value: str) -> str:
        problem = files_path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        if value.endswith("/"):
            raise ValueError("must not end with /")
        return value

    @field_validator("cap_add")
    @classmethod
    def _known_capabilities(cls, value: list[str]) -> list[str]:
        names = [c.upper().removeprefix("CAP_") for c in value]
        unknown = sorted(set(names) - KNOWN_CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capabilities: {', '.join(unknown)}")
        return sorted(set(names))

    @field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in value if k.startswith(RESERVED_LABEL_PREFIX))
        if reserved:
            raise ValueError(f"labels {reserved} are reserved for gpuyard")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> ContainerSpec:
        if len(set(self.gpu_indices)) != len(self.gpu_indices):
            raise ValueError("gpu_indices: a GPU is listed twice")
        if len(set(self.gpu_uuids)) != len(self.gpu_uuids):
            raise ValueError("gpu_uuids: a GPU is listed twice")
        seen = {(p.container_port, p.protocol) for p in self.ports}
        if len(seen) != len(self.ports):
            raise ValueError("ports: a container port is listed twice")
        return self


def _no_reserved(value: dict[str, str]) -> dict[str, str]:
    reserved = sorted(k for k in value if k.startswith(RESERVED_LABEL_PREFIX))
    if reserved:
        raise ValueError(f"labels {reserved} are reserved for gpuyard")
    return value


class LabelsRequest(BaseModel):
    """Labels to set over a container's own (the agent keeps them: Docker's are fixed)."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[
        Annotated[str, Field(min_length=1, max_length=128)],
        Annotated[str, Field(max_length=256)],
    ] = Field(max_length=32)

    @field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _no_reserved(value)


class PublishedPort(BaseModel):
    container_port: int
    protocol: str
    host_ip: str
    host_port: int


class ContainerStats(BaseModel):
    """A container's cumulative CPU time (its cgroup's), read now: two readings make a
    utilisation (the control plane's culling loop keeps the last one)."""

    id: str
    running: bool
    #: CPU time used since the container started, in seconds (None: Docker said nothing).
    cpu_seconds: float | None = None
    #: When Docker read it (RFC 3339, the daemon's clock).
    read_at: str | None = None


class ContainerInfo(BaseModel):
    """A gpuyard container as Docker reports it."""

    id: str
    name: str
    workload_id: str
    replica: int
    image: str
    state: str = Field(description="created, running, paused, restarting, exited, dead")
    running: bool
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    ports: list[PublishedPort] = Field(default_factory=list)
    gpu_uuids: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class ContainersPublic(BaseModel):
    data: list[ContainerInfo]
    count: int


class StopRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_s: float = Field(default=30.0, ge=0, le=3600)


class GpuInfo(BaseModel):
    """One GPU as NVML or nvidia-smi reports it; None where the device does not say."""

    index: int
    uuid: str
    name: str
    memory_total_mib: int
    memory_used_mib: int | None = None
    utilization_gpu_pct: float | None = None
    utilization_memory_pct: float | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    mig_mode: Literal["enabled", "disabled"] | None = None
    pci_bus_id: str | None = None
    serial: str | None = None


class DockerInfo(BaseModel):
    version: str
    api_version: str
    runtimes: list[str]
    nvidia_runtime: bool
    storage_driver: str
    backing_filesystem: str | None = None
    cgroup_version: str | None = None


class Inventory(BaseModel):
    """What the host has: the control plane derives a docker server's capacity from it."""

    agent_name: str
    agent_version: str
    hostname: str
    cpu_count: int
    cpu_percent: float | None = None
    ram_total_mib: int
    ram_available_mib: int
    disk_total_mib: int = Field(description="the filesystem holding the agent's data dir")
    disk_free_mib: int
    gpus: list[GpuInfo]
    gpu_source: Literal["nvml", "nvidia-smi", "none"]
    gpu_driver_version: str | None = None
    gpu_error: str | None = Field(default=None, description="why NVML / nvidia-smi failed")
    docker: DockerInfo | None = None
    docker_error: str | None = None
    publish_address: str


class FileEntry(BaseModel):
    """One entry of a workspace directory (symbolic links are listed, never followed)."""

    name: str
    path: str
    type: Literal["file", "dir", "symlink", "other"]
    size: int
    modified_at: float


class FilesPublic(BaseModel):
    path: str
    data: list[FileEntry]
    count: int
    used_bytes: int
    quota_bytes: int
