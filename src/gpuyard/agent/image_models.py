"""The agent's wire contract for images: what the control plane sends to list, pull,
build and push images, and the NDJSON progress lines the agent answers. Imported by both
sides (the agent's images router and ``gpuyard.runtimes.docker_images``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_REFERENCE_LENGTH = 512
#: Longest text of one progress line; a longer build output line is cut.
MAX_MESSAGE_LENGTH = 4096
#: Longest NDJSON line either side reads (the message, escaped, and the other fields).
MAX_LINE_BYTES = 6 * MAX_MESSAGE_LENGTH + 2048


class ImageInfo(BaseModel):
    id: str
    tags: list[str]
    size_bytes: int
    created_at: str | None = None


class ImagesPublic(BaseModel):
    data: list[ImageInfo]
    count: int


class RegistryAuth(BaseModel):
    """Credentials for one call; the agent never logs or stores them."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(default=None, max_length=256)
    password: str | None = Field(default=None, max_length=4096, repr=False)
    #: ``host[:port]`` of the registry.
    server_address: str = Field(max_length=300)


class PullSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=MAX_REFERENCE_LENGTH)
    auth: RegistryAuth | None = None


class PushSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=MAX_REFERENCE_LENGTH)
    target: str = Field(min_length=1, max_length=MAX_REFERENCE_LENGTH)
    auth: RegistryAuth | None = None


class ProgressLine(BaseModel):
    """One line of a pull, build or push; the last is ``done`` or ``error``."""

    kind: Literal["status", "log", "error", "done"]
    message: str = Field(max_length=MAX_MESSAGE_LENGTH)
    layer: str | None = Field(default=None, max_length=256)
    current: int | None = None
    total: int | None = None
    image: str | None = Field(default=None, max_length=MAX_REFERENCE_LENGTH)
