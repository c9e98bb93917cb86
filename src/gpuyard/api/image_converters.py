"""Image read models -> API schemas."""

from __future__ import annotations

from gpuyard.api.schemas.images import (
    HostImagePublic,
    ImageProgressPublic,
    ImagePublic,
    RegistryPublic,
)
from gpuyard.domain.image_records import CatalogImage, HostImage, ImageProgress, Registry


def image_public(image: CatalogImage) -> ImagePublic:
    resources = image.default_resources
    return ImagePublic(
        id=image.id,
        name=image.name,
        reference=image.reference,
        type=image.type,
        default_port=image.default_port,
        cpu=resources.cpu,
        ram_gb=resources.ram_gb,
        storage_gb=resources.storage_gb,
        gpu=resources.gpu,
        description=image.description,
        files_path=image.files_path,
        created_by=image.created_by,
        created_at=image.created_at,
        updated_at=image.updated_at,
    )


def registry_public(registry: Registry) -> RegistryPublic:
    return RegistryPublic(
        id=registry.id,
        name=registry.name,
        url=registry.address,
        username=registry.username,
        has_password=registry.has_password,
        insecure=registry.insecure,
        created_at=registry.created_at,
    )


def host_image_public(image: HostImage) -> HostImagePublic:
    return HostImagePublic(
        id=image.id, tags=list(image.tags), size_bytes=image.size_bytes, created_at=image.created_at
    )


def progress_line(progress: ImageProgress) -> bytes:
    """One NDJSON line."""
    line = ImageProgressPublic(
        kind=progress.kind.value,
        message=progress.message,
        layer=progress.layer,
        current=progress.current,
        total=progress.total,
        image=progress.image,
    )
    return line.model_dump_json().encode() + b"\n"
