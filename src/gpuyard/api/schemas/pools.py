"""Warm pool schemas: PoolCreate, PoolUpdate, PoolPublic, PoolsPublic."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import Cpu, Gpu, ObjectId, RamGb, RequestModel, StorageGb
from gpuyard.api.schemas.images import FilesPath
from gpuyard.api.schemas.workloads import CommandArg, EnvName, EnvValue, Port
from gpuyard.domain.files_paths import DEFAULT_FILES_PATH
from gpuyard.domain.limits import MAX_COMMAND_ARGS, MAX_ENV_ENTRIES, MAX_IMAGE_LENGTH
from gpuyard.domain.pools import TYPE_PATTERN

PoolName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
]
ImageType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=TYPE_PATTERN,
        examples=["nginx"],
        description="the image catalog's type slug (nginx, python, ubuntu-ssh...)",
    ),
]
TargetSize = Annotated[int, Field(ge=0, le=256, description="warm containers to keep")]


class PoolCreate(RequestModel):
    """A pool on one server (``server_id``) or anywhere in a cluster (``cluster_id``):
    exactly one of the two."""

    name: PoolName
    image_type: ImageType
    image: str = Field(min_length=1, max_length=MAX_IMAGE_LENGTH, examples=["nginx:1.27"])
    server_id: ObjectId | None = None
    cluster_id: ObjectId | None = None
    target_size: TargetSize = 2
    port_min: Port = Field(description="host ports of its containers: first")
    port_max: Port = Field(description="host ports of its containers: last")
    container_port: Port | None = Field(
        default=None, description="the port each warm container publishes"
    )
    cpu: Cpu = 0.5
    ram_gb: RamGb = 0.5
    storage_gb: StorageGb = 0
    gpu: Gpu = 0
    command: list[CommandArg] | None = Field(default=None, max_length=MAX_COMMAND_ARGS)
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, max_length=MAX_ENV_ENTRIES)
    files_path: FilesPath = Field(
        default=DEFAULT_FILES_PATH,
        description="where each warm container's files directory is mounted; a launch "
        "claims one only when its own files_path is the same",
    )


class PoolUpdate(RequestModel):
    """Resize (``target_size``) or change a pool; a new image replaces the available warm
    containers at once (assigned ones stay their users')."""

    target_size: TargetSize | None = None
    image: str | None = Field(default=None, min_length=1, max_length=MAX_IMAGE_LENGTH)
    port_min: Port | None = None
    port_max: Port | None = None


class PoolMemberPublic(BaseModel):
    workload_id: str
    pool_index: int
    state: str = Field(description="available | assigned")
    status: str = Field(description="the workload's status (pending, running...)")
    owner_id: str
    name: str
    server_id: str | None
    host_port: int | None
    container_name: str = Field(
        description="pool_<type>_<index>_<port>_<first 8 characters of the workload id>"
    )


class PoolPublic(BaseModel):
    id: str
    name: str
    image_type: str
    image: str
    server_id: str | None
    cluster_id: str | None
    target_size: int
    port_min: int
    port_max: int
    container_port: int | None
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float
    command: list[str] | None
    env: dict[str, str]
    files_path: str
    available: int = Field(description="running and ready to be claimed")
    warming: int = Field(description="queued or starting")
    assigned: int = Field(description="handed to users' launches")
    members: list[PoolMemberPublic]
    failures: int = Field(
        description="its latest warm containers that failed in a row (0: none recently)"
    )
    failing_since: datetime | None = Field(description="the first failure of that run")
    last_failure_at: datetime | None
    last_failure: str | None = Field(description="why the latest one failed")
    refill_after: datetime | None = Field(
        description="refilling waits until then after failures (backing off, bounded)"
    )
    created_at: datetime
    updated_at: datetime


class PoolsPublic(BaseModel):
    data: list[PoolPublic]
    count: int
