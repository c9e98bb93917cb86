"""Workload schemas: WorkloadCreate, WorkloadUpdate, WorkloadPublic, WorkloadsPublic."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import RequestModel
from gpuyard.domain.priority import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY

Priority = Annotated[
    int, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="1 lowest, 5 highest")
]
Port = Annotated[int, Field(ge=1, le=65535)]


class WorkloadCreate(RequestModel):
    image: str = Field(min_length=1, max_length=512, examples=["pytorch/pytorch:2.4"])
    name: str | None = Field(default=None, max_length=128)
    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    ports: list[Port] = Field(default_factory=list, max_length=32)
    cpu: float = Field(default=1, description="cores, in 0.1 steps")
    ram_gb: float = 1
    storage_gb: float = 0
    gpu: float = Field(default=0, description="whole GPUs (1, 2, ...) or a share 0.1-0.9")
    gpu_model: str | None = Field(default=None, max_length=128, examples=["H100"])
    priority: Priority = DEFAULT_PRIORITY
    preemptible: bool = True
    cluster_id: str | None = None
    team_id: str | None = None
    replicas: int = Field(default=1, ge=1, le=1024)
    gang: bool = False
    node_selector: dict[str, str] = Field(default_factory=dict, description="server labels")
    duration_s: float | None = Field(
        default=None, gt=0, description="simulated runtime only: succeed after this long"
    )


class WorkloadUpdate(RequestModel):
    cpu: float | None = None
    ram_gb: float | None = None
    storage_gb: float | None = None
    gpu: float | None = None
    gpu_model: str | None = Field(default=None, max_length=128)
    priority: Priority | None = None
    preemptible: bool | None = None


class PortPublic(BaseModel):
    container_port: int
    host_port: int | None = Field(description="allocated on the server (docker servers)")
    url: str | None = None


class PlacementPublic(BaseModel):
    replica: int
    server_id: str
    server_name: str
    gpu_indices: list[int]
    gpu_milli: dict[int, int]


class WorkloadPublic(BaseModel):
    id: str
    name: str
    owner: str
    owner_id: str
    team_id: str | None
    cluster_id: str | None
    status: str
    reason: str | None
    reason_code: str | None
    image: str
    command: list[str] | None
    env: dict[str, str]
    ports: list[PortPublic]
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float
    gpu_model: str | None
    priority: int
    preemptible: bool
    replicas: int
    gang: bool
    node_selector: dict[str, str]
    duration_s: float | None
    server_id: str | None = Field(description="server of replica 0 (see placements)")
    server_name: str | None
    gpu_indices: list[int] = Field(description="GPU indices of replica 0 on its server")
    placements: list[PlacementPublic]
    preemption_count: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class WorkloadsPublic(BaseModel):
    data: list[WorkloadPublic]
    count: int


class WorkloadEventPublic(BaseModel):
    id: int
    at: datetime
    from_status: str | None
    to_status: str
    reason: str | None
    details: dict[str, object]


class WorkloadEventsPublic(BaseModel):
    data: list[WorkloadEventPublic]
    count: int


class QueueEntryPublic(BaseModel):
    position: int = Field(description="1 = considered first")
    workload: WorkloadPublic
    reason: str
    code: str
    reserved_server_id: str | None


class QueuePublic(BaseModel):
    data: list[QueueEntryPublic]
    count: int
