"""Launch from the catalog: a submission naming ``image_id`` takes what it leaves out
from that image's defaults.

The one rule: every field the request gives (present and not null) wins; every field it
leaves out that the image has a value for comes from the image (``image`` from its
reference, ``ports`` from its default port, ``cpu``/``ram_gb``/``storage_gb``/``gpu``
from its default resources, ``files_path`` from its files path); anything else keeps the
API's default. The result is an ordinary submission: validated, scheduled and matched
against warm pools on the values it ends up with. Nothing links the workload to the
catalog entry afterwards (the entry may change or go; the workload keeps its values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Target
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.image_records import CatalogImage
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import may
from gpuyard.store.images import image_record, image_row


class LaunchSpec(Protocol):
    """The fields of a submission this module reads (``WorkloadSpec`` has them all)."""

    @property
    def image_id(self) -> str | None: ...
    #: The fields the request gave (present, even when null).
    @property
    def model_fields_set(self) -> set[str]: ...
    @property
    def image(self) -> str | None: ...
    @property
    def ports(self) -> Sequence[int]: ...
    @property
    def cpu(self) -> float: ...
    @property
    def ram_gb(self) -> float: ...
    @property
    def storage_gb(self) -> float: ...
    @property
    def gpu(self) -> float: ...
    @property
    def files_path(self) -> str | None: ...


def read_catalog_image(ctx: ServiceContext, caller: Caller, image_id: str) -> CatalogImage:
    """The image a launch names, if the caller may read the catalog; an unknown image
    and one the caller may not read get the same 422 on ``image_id``."""
    with ctx.db.read() as session:
        row = image_row(session, image_id)
        if row is None or not may(session, caller, Permission.IMAGE_READ, Target()):
            raise InvalidInput.for_field("image_id", f"image {image_id!r} does not exist")
        return image_record(row)


def catalog_defaults(image: CatalogImage, spec: LaunchSpec) -> dict[str, object]:
    """{field: value} for each field ``spec`` leaves out that ``image`` has a value for."""
    given = {name for name in spec.model_fields_set if getattr(spec, name, None) is not None}
    # Exact API values (Resources.ram_gb rounds to 3 places for display: 64 MiB would
    # come back as 63 and no longer match a pool of the same image).
    offered: dict[str, object] = {
        "image": image.reference,
        "cpu": image.cpu_milli / 1000,
        "ram_gb": image.ram_mib / MIB_PER_GB,
        "storage_gb": image.storage_mib / MIB_PER_GB,
        "gpu": image.gpu_milli / GPU_MILLI,
    }
    if image.default_port is not None:
        offered["ports"] = [image.default_port]
    if image.files_path is not None:
        offered["files_path"] = image.files_path
    return {name: value for name, value in offered.items() if name not in given}
