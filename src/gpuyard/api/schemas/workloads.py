"""Workload schemas: WorkloadCreate, WorkloadUpdate, WorkloadPublic, WorkloadsPublic."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import (
    Cpu,
    Gpu,
    GpuMemoryGb,
    GpuModelRequest,
    Labels,
    ObjectId,
    RamGb,
    RequestModel,
    StorageGb,
)
from gpuyard.api.schemas.fairshare import FairShareTeamPublic
from gpuyard.api.schemas.images import FilesPath
from gpuyard.domain.culling import MAX_LIFETIME_S, MIN_LIFETIME_S
from gpuyard.domain.limits import (
    ENV_NAME_PATTERN,
    MAX_COMMAND_ARG_LENGTH,
    MAX_COMMAND_ARGS,
    MAX_DURATION_S,
    MAX_ENV_ENTRIES,
    MAX_ENV_NAME_LENGTH,
    MAX_ENV_VALUE_LENGTH,
    MAX_IMAGE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PORTS,
    MAX_REPLICAS,
)
from gpuyard.domain.priority import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY

Priority = Annotated[
    int, Field(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="1 lowest, 5 highest")
]
Port = Annotated[int, Field(ge=1, le=65535)]
EnvName = Annotated[
    str, Field(min_length=1, max_length=MAX_ENV_NAME_LENGTH, pattern=ENV_NAME_PATTERN)
]
EnvValue = Annotated[str, Field(max_length=MAX_ENV_VALUE_LENGTH)]
CommandArg = Annotated[str, Field(max_length=MAX_COMMAND_ARG_LENGTH)]


class WorkloadCreate(RequestModel):
    """A launch. With ``image_id``, every field left out (or null) that the catalog image
    has a value for comes from it (image, ports, cpu, ram_gb, storage_gb, gpu,
    files_path); the fields given win."""

    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IMAGE_LENGTH,
        examples=["pytorch/pytorch:2.4"],
        description="required unless image_id is given",
    )
    image_id: ObjectId | None = Field(
        default=None, description="a catalog image whose defaults fill what is left out"
    )
    files_path: FilesPath | None = Field(
        default=None,
        description="where the files directory is mounted; default: the image's "
        "files_path (with image_id), else /workspace. Not /, not inside a system "
        "directory (/proc, /sys, /dev, /etc, /bin, /sbin, /lib*, /usr, /boot, /root)",
    )
    name: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    command: list[CommandArg] | None = Field(default=None, max_length=MAX_COMMAND_ARGS)
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, max_length=MAX_ENV_ENTRIES)
    plain_env: list[EnvName] = Field(
        default_factory=list,
        max_length=MAX_ENV_ENTRIES,
        description="keys of env whose values others who may read the workload see; "
        "every other value is a secret shown to its owner only",
    )
    ports: list[Port] = Field(default_factory=list, max_length=MAX_PORTS)
    cpu: Cpu = 1
    ram_gb: RamGb = 1
    storage_gb: StorageGb = 0
    gpu: Gpu = 0
    gpu_memory_gb: GpuMemoryGb | None = None
    gpu_model: GpuModelRequest | None = None
    priority: Priority = DEFAULT_PRIORITY
    preemptible: bool = True
    cluster_id: ObjectId | None = None
    team_id: ObjectId | None = None
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    gang: bool = False
    node_selector: Labels = Field(default_factory=dict, description="server labels")
    duration_s: float | None = Field(
        default=None,
        gt=0,
        le=MAX_DURATION_S,
        description="simulated runtime only: succeed after this long (seconds)",
    )
    max_lifetime_s: int | None = Field(
        default=None,
        ge=MIN_LIFETIME_S,
        le=MAX_LIFETIME_S,
        description="stopped this long after it started (seconds), warned before; "
        "none: its team's default for open-ended workloads, if any",
    )


class WorkloadUpdate(RequestModel):
    cpu: Cpu | None = None
    ram_gb: RamGb | None = None
    storage_gb: StorageGb | None = None
    gpu: Gpu | None = None
    gpu_model: GpuModelRequest | None = None
    priority: Priority | None = None
    preemptible: bool | None = None


class PortPublic(BaseModel):
    container_port: int
    host_port: int | None = Field(description="allocated on the server (docker servers)")
    url: str | None = None
    route_url: str | None = Field(
        default=None,
        description="its stable URL through gpuyard's nginx (/u/<user>/<workload>/<port>/) "
        "while it runs; none when per-user routing is off",
    )


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
    env: dict[str, str] = Field(
        description="values are masked ('********') for all but the owner, except plain_env"
    )
    plain_env: list[str] = Field(description="keys of env whose values are not secret")
    ports: list[PortPublic]
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float
    gpu_memory_gb: float | None = Field(
        default=None, description="GPU memory each replica's share reserves; null: none"
    )
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
    from_pool: bool = Field(
        default=False, description="the launch took a warm pool container (started at once)"
    )
    pool_id: str | None = Field(default=None, description="the pool of a warm container")
    files_path: str = Field(description="where its files directory is mounted")
    max_lifetime_s: int | None = Field(
        default=None, description="stopped this long after it started (seconds)"
    )


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


class PlannedReplicaPublic(BaseModel):
    replica: int
    server_id: str
    server_name: str
    gpu_indices: list[int]


class PlannedVictimPublic(BaseModel):
    workload_id: str
    name: str
    replica: int
    server_name: str


class WorkloadPlanPublic(BaseModel):
    """What one scheduling cycle would do with the request now; nothing was written."""

    starts_now: bool = Field(description="placed by the next cycle if nothing changes")
    placements: list[PlannedReplicaPublic]
    preempts: list[PlannedVictimPublic] = Field(
        description="replicas it would preempt, of workloads you may read"
    )
    preempts_hidden: int = Field(description="replicas it would preempt that you may not read")
    code: str | None = Field(description="why it would wait (as GET /queue says); null: starts")
    reason: str | None
    estimated_start: datetime | None = Field(
        description="now when it starts now; else the queue's estimate (null: unknown)"
    )


class QueueEntryPublic(BaseModel):
    position: int = Field(description="1 = considered first")
    workload: WorkloadPublic
    reason: str
    code: str
    reserved_server_id: str | None
    retries: int = Field(
        description="Times it was re-queued after an eviction, a lost server or a failed start"
    )
    estimated_start: datetime | None = Field(
        description="When it should start if running work ends when it declared (its "
        "duration or maximum lifetime) and nothing more important arrives; null when "
        "work in its way declared no end, or nothing could ever hold it"
    )


JobRegistryName = Literal["queued", "started", "finished", "failed", "deferred"]


class JobPublic(BaseModel):
    """One workload in the job view: its registry and how many times it was retried."""

    workload_id: str
    name: str
    status: str
    registry: JobRegistryName = Field(
        description="queued (pending), started (scheduled, starting, running), finished "
        "(succeeded, stopped), failed, deferred (evicted or lost, waiting to come back)"
    )
    retries: int = Field(
        description="Times it was re-queued after an eviction, a lost server or a failed start"
    )
    deferred_until: datetime | None = Field(
        description="When a deferred workload comes back to the queue (an evicted one's "
        "backoff end); null when not deferred or not known"
    )


class JobRegistriesPublic(BaseModel):
    """How many of the workloads the caller may read each registry holds."""

    queued: int
    started: int
    finished: int
    failed: int
    deferred: int


class QueuePublic(BaseModel):
    data: list[QueueEntryPublic]
    count: int
    registries: JobRegistriesPublic
    deferred: list[JobPublic] = Field(
        description="Deferred workloads, the soonest back first (at most 200)"
    )
    teams: list[FairShareTeamPublic] = Field(
        default_factory=list,
        description="The quota tree's figures (as GET /fairshare gives them: guarantee, "
        "usage, borrowed, fair share...) of the teams with work in the queue and of their "
        "departments, those the caller may see, departments first",
    )
