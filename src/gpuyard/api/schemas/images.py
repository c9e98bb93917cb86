"""Image catalog, registry and host image schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gpuyard.api.schemas.common import Cpu, Gpu, ObjectId, RamGb, RequestModel, StorageGb
from gpuyard.domain.image_references import (
    MAX_FILES_PATH_LENGTH,
    MAX_REFERENCE_LENGTH,
    NAME_PATTERN,
    REGISTRY_URL_PATTERN,
    TYPE_PATTERN,
)
from gpuyard.domain.limits import PRINTABLE_ASCII_PATTERN

MAX_DESCRIPTION_LENGTH = 4096

CatalogName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN, examples=["web-nginx"])
]
ImageType = Annotated[
    str,
    Field(min_length=1, max_length=32, pattern=TYPE_PATTERN, examples=["nginx"]),
]
Reference = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_REFERENCE_LENGTH,
        description="a Docker image reference: [registry[:port]/]repository[:tag][@digest]",
        examples=["nginx:1.27"],
    ),
]
Port = Annotated[int, Field(ge=1, le=65535)]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH)]
FilesPath = Annotated[
    str,
    Field(
        min_length=2,
        max_length=MAX_FILES_PATH_LENGTH,
        pattern=r"^/[!-~]+$",
        description="where a workload's files directory is mounted in the container",
        examples=["/srv/www"],
    ),
]


class ImageCreate(RequestModel):
    name: CatalogName
    reference: Reference
    type: ImageType
    default_port: Port | None = None
    cpu: Cpu = 1
    ram_gb: RamGb = 1
    storage_gb: StorageGb = 0
    gpu: Gpu = 0
    description: Description = ""
    files_path: FilesPath | None = None


class ImageUpdate(RequestModel):
    """Only the fields given change; default_port and files_path: null clears them."""

    name: CatalogName | None = None
    reference: Reference | None = None
    type: ImageType | None = None
    default_port: Port | None = None
    cpu: Cpu | None = None
    ram_gb: RamGb | None = None
    storage_gb: StorageGb | None = None
    gpu: Gpu | None = None
    description: Description | None = None
    files_path: FilesPath | None = None


class ImagePublic(BaseModel):
    id: str
    name: str
    reference: str
    type: str
    default_port: int | None
    cpu: float
    ram_gb: float
    storage_gb: float
    gpu: float
    description: str
    files_path: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class ImagesPublic(BaseModel):
    data: list[ImagePublic]
    count: int


class RegistryCreate(RequestModel):
    name: CatalogName
    url: str = Field(
        min_length=1,
        max_length=300,
        pattern=REGISTRY_URL_PATTERN,
        description="host[:port] or http(s)://host[:port]",
        examples=["registry.example:5000"],
    )
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        pattern=PRINTABLE_ASCII_PATTERN,
        description="stored encrypted, never returned",
    )
    insecure: bool | None = Field(
        default=None,
        description="plain HTTP (a local registry); default: true for an http:// url. "
        "dockerd must allow it too (127.0.0.0/8 is allowed by default)",
    )


class RegistryPublic(BaseModel):
    id: str
    name: str
    url: str = Field(description="host[:port]")
    username: str | None
    has_password: bool
    insecure: bool
    created_at: datetime


class RegistriesPublic(BaseModel):
    data: list[RegistryPublic]
    count: int


class HostImagePublic(BaseModel):
    id: str
    tags: list[str]
    size_bytes: int
    created_at: str | None


class HostImagesPublic(BaseModel):
    data: list[HostImagePublic]
    count: int


class PullRequest(RequestModel):
    reference: Reference
    registry_id: ObjectId | None = Field(
        default=None,
        description="read the reference in this registry, with its credentials; default: "
        "the registry configured at the reference's address, if any",
    )


class PushRequest(RequestModel):
    source: Reference = Field(description="the image on the server")
    registry_id: ObjectId
    target: Reference | None = Field(
        default=None,
        description="repository[:tag] in the registry; default: the source's",
    )


class ImageProgressPublic(BaseModel):
    """One line of the NDJSON stream of a pull, build or push; the last is done or error."""

    kind: Literal["status", "log", "error", "done"]
    message: str
    layer: str | None = None
    current: int | None = None
    total: int | None = None
    image: str | None = None
