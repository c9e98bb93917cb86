"""The image catalog and registries repository, mapped to read models
(domain/image_records.py). Functions take the caller's Session and never commit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gpuyard.domain.image_records import CatalogImage, Registry
from gpuyard.store.base import as_utc
from gpuyard.store.image_tables import ImageRow, RegistryRow

#: Columns of an image a change may set.
IMAGE_COLUMNS = frozenset({
    "name", "reference", "type", "default_port", "cpu_milli", "ram_mib", "storage_mib",
    "gpu_milli", "description", "files_path",
})  # fmt: skip


def image_record(row: ImageRow) -> CatalogImage:
    """The read model of an image row."""
    return CatalogImage(
        id=row.id,
        name=row.name,
        reference=row.reference,
        type=row.type,
        default_port=row.default_port,
        cpu_milli=row.cpu_milli,
        ram_mib=row.ram_mib,
        storage_mib=row.storage_mib,
        gpu_milli=row.gpu_milli,
        description=row.description,
        files_path=row.files_path,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def registry_record(row: RegistryRow) -> Registry:
    """The read model of a registry row (the password only as ``has_password``)."""
    return Registry(
        id=row.id,
        name=row.name,
        address=row.address,
        username=row.username,
        has_password=row.password_enc is not None,
        insecure=row.insecure,
        created_at=as_utc(row.created_at),
    )


def image_row(session: Session, image_id: str) -> ImageRow | None:
    return session.get(ImageRow, image_id)


def image_name_taken(session: Session, name: str, *, other_than: str | None = None) -> bool:
    """Whether an image (other than ``other_than``) is named ``name``."""
    query = select(ImageRow.id).where(ImageRow.name == name)
    if other_than is not None:
        query = query.where(ImageRow.id != other_than)
    return session.scalar(query) is not None


def add_image(
    session: Session, values: Mapping[str, Any], created_by: str | None, now: datetime
) -> CatalogImage:
    """Insert a catalog entry from validated column values."""
    row = ImageRow(**values, created_by=created_by, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return image_record(row)


def change_image(
    session: Session, row: ImageRow, values: Mapping[str, Any], now: datetime
) -> CatalogImage:
    """Set validated column values on a loaded image row."""
    for column, value in values.items():
        if column not in IMAGE_COLUMNS:
            raise ValueError(f"not an image column: {column}")
        setattr(row, column, value)
    row.updated_at = now
    session.flush()
    return image_record(row)


def find_images(
    session: Session, image_type: str | None, limit: int, offset: int
) -> tuple[list[CatalogImage], int]:
    """Images by name, optionally of one type, with the total count."""
    query = select(ImageRow)
    if image_type is not None:
        query = query.where(ImageRow.type == image_type)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ImageRow.name).limit(limit).offset(offset)).all()
    return [image_record(r) for r in rows], total


def registry_row(session: Session, registry_id: str) -> RegistryRow | None:
    return session.get(RegistryRow, registry_id)


def registry_by_address(session: Session, address: str) -> RegistryRow | None:
    """The registry at ``host[:port]`` (addresses are unique)."""
    return session.scalars(select(RegistryRow).where(RegistryRow.address == address)).first()


def registry_taken(session: Session, name: str, address: str) -> str | None:
    """Which of ``name`` / ``address`` another registry already has (``"name"``, ``"url"``)."""
    if session.scalar(select(RegistryRow.id).where(RegistryRow.name == name)) is not None:
        return "name"
    if registry_by_address(session, address) is not None:
        return "url"
    return None


def add_registry(
    session: Session,
    name: str,
    address: str,
    username: str | None,
    password_enc: str | None,
    insecure: bool,
    now: datetime,
) -> Registry:
    """Insert a registry (``password_enc``: already encrypted)."""
    row = RegistryRow(
        name=name,
        address=address,
        username=username,
        password_enc=password_enc,
        insecure=insecure,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return registry_record(row)


def find_registries(session: Session, limit: int, offset: int) -> tuple[list[Registry], int]:
    """Registries by name, with the total count."""
    total = session.scalar(select(func.count()).select_from(RegistryRow)) or 0
    rows = session.scalars(
        select(RegistryRow).order_by(RegistryRow.name).limit(limit).offset(offset)
    ).all()
    return [registry_record(r) for r in rows], total
