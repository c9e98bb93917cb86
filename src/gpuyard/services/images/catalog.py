"""The image catalog: create, read, change and delete entries.

Every value is checked once here (the reference's grammar, the slugs, the default
resources in API units, the files path) and stored in the workloads table's units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from gpuyard.domain.image_records import CatalogImage
from gpuyard.domain.image_references import check_files_path, parse_reference
from gpuyard.domain.resources import GpuShareRule, Resources
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.store.image_tables import ImageRow
from gpuyard.store.images import (
    add_image,
    change_image,
    find_images,
    image_name_taken,
    image_record,
    image_row,
)

#: Fields a change may set to null.
CLEARABLE = frozenset({"default_port", "files_path"})


@dataclass(frozen=True)
class ImageFields:
    """A catalog entry as given (API units); None: not given (a change leaves it)."""

    name: str | None = None
    reference: str | None = None
    type: str | None = None
    default_port: int | None = None
    cpu: float | None = None
    ram_gb: float | None = None
    storage_gb: float | None = None
    gpu: float | None = None
    description: str | None = None
    files_path: str | None = None
    #: Fields given as an explicit null (a change clears them): default_port, files_path.
    cleared: frozenset[str] = frozenset()


def _columns(
    fields: ImageFields, current: CatalogImage | None, shares: GpuShareRule
) -> dict[str, Any]:
    """The column values ``fields`` set, validated (InvalidInput naming each bad field)."""
    values: dict[str, Any] = {}
    if fields.name is not None:
        values["name"] = fields.name
    if fields.reference is not None:
        values["reference"] = str(parse_reference(fields.reference))
    if fields.type is not None:
        values["type"] = fields.type
    if fields.description is not None:
        values["description"] = fields.description
    if fields.default_port is not None or "default_port" in fields.cleared:
        values["default_port"] = fields.default_port
    if fields.files_path is not None:
        values["files_path"] = check_files_path(fields.files_path)
    elif "files_path" in fields.cleared:
        values["files_path"] = None
    given = (fields.cpu, fields.ram_gb, fields.storage_gb, fields.gpu)
    if current is None or any(v is not None for v in given):
        base = current.default_resources if current else Resources()
        resources = Resources.from_api(
            base.cpu if fields.cpu is None else fields.cpu,
            base.ram_gb if fields.ram_gb is None else fields.ram_gb,
            base.storage_gb if fields.storage_gb is None else fields.storage_gb,
            base.gpu if fields.gpu is None else fields.gpu,
            shares=shares,
        )
        values.update(
            cpu_milli=resources.cpu_milli,
            ram_mib=resources.ram_mib,
            storage_mib=resources.storage_mib,
            gpu_milli=resources.gpu_milli,
        )
    return values


def _name_taken(name: str) -> Conflict:
    return Conflict(f"an image named {name!r} already exists", [FieldError("name", "taken")])


def create_image(ctx: ServiceContext, caller: Caller, fields: ImageFields) -> CatalogImage:
    """Add a catalog entry (409 when the name is taken)."""
    if fields.name is None or fields.reference is None or fields.type is None:
        raise ValueError("name, reference and type are required")  # the schema requires them
    values = _columns(fields, None, ctx.settings.gpu_shares)
    values.setdefault("description", "")
    now = ctx.now()
    taken = _name_taken(fields.name)
    with ctx.db.write() as session:
        if image_name_taken(session, fields.name):
            raise taken
        try:
            image = add_image(session, values, caller.user_id, now)
        except IntegrityError as exc:  # created (or renamed) concurrently: the unique name
            raise taken from exc
        details = {"name": image.name, "reference": image.reference, "type": image.type}
        record_audit(
            session, AuditActor.of(caller), "image.create", "image", image.id, now, details
        )
    return image


def list_images(
    ctx: ServiceContext, image_type: str | None, limit: int, offset: int
) -> tuple[list[CatalogImage], int]:
    """Catalog entries by name (optionally of one type), with the total count."""
    with ctx.db.read() as session:
        return find_images(session, image_type, limit, offset)


def get_image(ctx: ServiceContext, image_id: str) -> CatalogImage:
    """One catalog entry (NotFound when there is none)."""
    with ctx.db.read() as session:
        return image_record(_existing(session, image_id))


def update_image(
    ctx: ServiceContext, caller: Caller, image_id: str, fields: ImageFields
) -> CatalogImage:
    """Change the given fields of an entry (409 when renamed to a taken name)."""
    not_nullable = sorted(fields.cleared - CLEARABLE)
    if not_nullable:
        raise InvalidInput.for_fields([FieldError(f, "cannot be null") for f in not_nullable])
    now = ctx.now()
    with ctx.db.write() as session:
        row = _existing(session, image_id)
        values = _columns(fields, image_record(row), ctx.settings.gpu_shares)
        if fields.name is not None and image_name_taken(session, fields.name, other_than=row.id):
            raise _name_taken(fields.name)
        try:
            image = change_image(session, row, values, now)
        except IntegrityError as exc:
            if fields.name is None:
                raise
            # Renamed (or created) concurrently: the unique name.
            raise _name_taken(fields.name) from exc
        details = {"changed": sorted(values)}
        record_audit(
            session, AuditActor.of(caller), "image.update", "image", image.id, now, details
        )
    return image


def delete_image(ctx: ServiceContext, caller: Caller, image_id: str) -> None:
    """Remove a catalog entry (the images on hosts stay)."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = _existing(session, image_id)
        details = {"name": row.name, "reference": row.reference}
        session.delete(row)
        session.flush()
        record_audit(
            session, AuditActor.of(caller), "image.delete", "image", image_id, now, details
        )


def _existing(session: Session, image_id: str) -> ImageRow:
    row = image_row(session, image_id)
    if row is None:
        raise NotFound.for_object("image", image_id)
    return row
