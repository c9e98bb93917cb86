"""Read models of the image catalog and of container registries, and the neutral records
a runtime answers about the images on one host.

Pure data. Secrets (a registry's password) are never part of a read model: a registry says
only whether it has one; the decrypted ``RegistryCredentials`` exist for the moment of one
pull or push and hide the password from ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gpuyard.domain.resources import Resources


@dataclass(frozen=True)
class CatalogImage:
    """One catalog entry: what users launch from, with its defaults in stored units."""

    id: str
    name: str
    reference: str
    type: str
    default_port: int | None
    cpu_milli: int
    ram_mib: int
    storage_mib: int
    gpu_milli: int
    description: str
    #: Where a workload's files directory is mounted in a container of this image.
    files_path: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def default_resources(self) -> Resources:
        return Resources(self.cpu_milli, self.ram_mib, self.storage_mib, self.gpu_milli)


@dataclass(frozen=True)
class Registry:
    """A container registry images are pushed to and pulled from."""

    id: str
    name: str
    #: ``host[:port]``: the first component of the references that live there.
    address: str
    username: str | None
    #: Whether a (write-only) password is stored.
    has_password: bool
    #: Plain HTTP / no TLS verification (a local registry); dockerd must allow it too.
    insecure: bool
    created_at: datetime


@dataclass(frozen=True)
class RegistryCredentials:
    """What a runtime needs to log in to a registry for one call; never logged."""

    address: str
    username: str | None
    password: str | None = field(repr=False)


@dataclass(frozen=True)
class HostImage:
    """An image present on one host."""

    id: str
    tags: tuple[str, ...]
    size_bytes: int
    created_at: str | None


class ProgressKind(StrEnum):
    #: A step of a pull or push (a layer's state, with bytes when known).
    STATUS = "status"
    #: A line of a build's output.
    LOG = "log"
    #: The operation failed; the last line of its stream.
    ERROR = "error"
    #: The operation succeeded; the last line of its stream.
    DONE = "done"


@dataclass(frozen=True)
class ImageProgress:
    """One line of a pull, build or push as it goes."""

    kind: ProgressKind
    message: str
    #: The layer (pull, push) the line is about, when it is about one.
    layer: str | None = None
    current: int | None = None
    total: int | None = None
    #: DONE: the image the operation made or fetched (its id or digest), when known.
    image: str | None = None
