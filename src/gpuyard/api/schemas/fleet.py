"""Cluster and server schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import (
    Cpu,
    GpuModel,
    Labels,
    ObjectId,
    RamGb,
    RequestModel,
    ResourcesPublic,
    StorageGb,
)
from gpuyard.domain.limits import (
    AGENT_URL_PATTERN,
    MAX_GPU_MEMORY_GB,
    MAX_GPUS_PER_SERVER,
    MAX_KUBECONFIG_LENGTH,
    PRINTABLE_ASCII_PATTERN,
)
from gpuyard.domain.server_state import ClusterKind, ServerStatus

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")]


class ClusterCreate(RequestModel):
    name: Name
    kind: Annotated[ClusterKind, Field(strict=False)]  # JSON strings name enum members
    kubeconfig: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_KUBECONFIG_LENGTH,
        description="kubernetes clusters: the kubeconfig (stored encrypted, never returned)",
    )


class ClusterUpdate(RequestModel):
    name: Name


class ClusterPublic(BaseModel):
    id: str
    name: str
    kind: str
    has_kubeconfig: bool
    created_at: datetime


class ClustersPublic(BaseModel):
    data: list[ClusterPublic]
    count: int


class GpuCreate(RequestModel):
    model: GpuModel
    memory_gb: float = Field(default=0, ge=0, le=MAX_GPU_MEMORY_GB)
    uuid: str | None = Field(default=None, max_length=64)


class ServerCreate(RequestModel):
    """Simulated clusters: declare cpu, ram_gb, storage_gb, gpus. Docker clusters: give
    agent_url and agent_token (and agent_tls_cert to pin an https agent's own certificate);
    capacity comes from the agent's inventory."""

    name: Name
    cluster_id: ObjectId
    cpu: Cpu | None = Field(default=None, description="simulated servers only")
    ram_gb: RamGb | None = Field(default=None, description="simulated servers only")
    storage_gb: StorageGb = 0
    gpus: list[GpuCreate] = Field(default_factory=list, max_length=MAX_GPUS_PER_SERVER)
    labels: Labels = Field(default_factory=dict)
    agent_url: str | None = Field(
        default=None,
        max_length=512,
        pattern=AGENT_URL_PATTERN,
        description="docker servers: http(s)://host:port",
    )
    agent_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=PRINTABLE_ASCII_PATTERN,
        description="docker servers: the agent's token (stored encrypted, never returned)",
    )
    agent_tls_cert: str | None = Field(
        default=None,
        min_length=1,
        max_length=16_384,
        description="docker servers over https: the agent's own certificate (PEM), pinned: "
        "the only one trusted for it (gpuyard agent install makes a self-signed one)",
    )
    host_ports: str | None = Field(
        default=None,
        pattern=r"^\d{1,5}-\d{1,5}$",
        description="docker servers: this server's own host port range, e.g. 20000-20999",
    )


class ServerUpdate(RequestModel):
    status: Annotated[ServerStatus | None, Field(strict=False)] = None
    labels: Labels | None = None


class GpuHolderPublic(BaseModel):
    """One replica's share of a GPU. The workload is named only for a reader who may read
    it; otherwise the share is only "in use" (every identifying field null)."""

    share: float = Field(description="of this GPU: 1 = the whole device")
    workload_id: str | None
    workload_name: str | None
    owner_id: str | None
    owner: str | None = Field(description="the owner's email")
    replica: int | None


class GpuPublic(BaseModel):
    index: int
    uuid: str
    model: str
    memory_gb: float
    allocated_milli: int
    allocated_memory_gb: float = Field(
        default=0, description="GPU memory reserved by shares that asked for some (GB)"
    )
    utilization: float | None
    holders: list[GpuHolderPublic] | None = Field(
        default=None,
        description="who holds this GPU (GET /servers/{id} only; null in lists); "
        "empty when it is free",
    )


class ServerPublic(BaseModel):
    id: str
    name: str
    cluster_id: str
    status: str
    agent_url: str | None = None
    last_seen_at: datetime | None = None
    labels: dict[str, str]
    capacity: ResourcesPublic
    allocated: ResourcesPublic
    gpus: list[GpuPublic]
    created_at: datetime
    updated_at: datetime


class ServersPublic(BaseModel):
    data: list[ServerPublic]
    count: int


class ServerEventPublic(BaseModel):
    id: int
    at: datetime
    from_status: str | None
    to_status: str
    reason: str | None
    details: dict[str, object]


class ServerEventsPublic(BaseModel):
    data: list[ServerEventPublic]
    count: int
