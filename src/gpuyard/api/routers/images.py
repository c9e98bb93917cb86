"""The image catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.image_converters import image_public
from gpuyard.api.schemas.images import (
    ImageCreate,
    ImagePublic,
    ImagesPublic,
    ImageType,
    ImageUpdate,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.images import catalog
from gpuyard.services.images.catalog import ImageFields

router = APIRouter(prefix="/images", tags=["images"])
Reader = Annotated[Caller, requires(Permission.IMAGE_READ)]
Manager = Annotated[Caller, requires(Permission.IMAGE_MANAGE)]


@router.get("", response_model=ImagesPublic)
def list_images(
    ctx: ContextDep,
    _caller: Reader,
    type: Annotated[ImageType | None, Query()] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> ImagesPublic:
    """Catalog entries by name, optionally of one type."""
    images, count = catalog.list_images(ctx, type, limit, offset)
    return ImagesPublic(data=[image_public(i) for i in images], count=count)


@router.post("", response_model=ImagePublic, status_code=status.HTTP_201_CREATED)
def create_image(ctx: ContextDep, caller: Manager, body: ImageCreate) -> ImagePublic:
    """Add an image to the catalog (409 when the name is taken)."""
    fields = ImageFields(**body.model_dump())
    return image_public(catalog.create_image(ctx, caller, fields))


@router.get("/{image_id}", response_model=ImagePublic)
def get_image(ctx: ContextDep, _caller: Reader, image_id: str) -> ImagePublic:
    return image_public(catalog.get_image(ctx, image_id))


@router.patch("/{image_id}", response_model=ImagePublic)
def update_image(ctx: ContextDep, caller: Manager, image_id: str, body: ImageUpdate) -> ImagePublic:
    """Change the given fields; ``default_port`` and ``files_path`` set to null clear them."""
    given = body.model_dump(exclude_unset=True)
    cleared = frozenset(k for k, v in given.items() if v is None)
    fields = ImageFields(**{k: v for k, v in given.items() if v is not None}, cleared=cleared)
    return image_public(catalog.update_image(ctx, caller, image_id, fields))


@router.delete("/{image_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_image(ctx: ContextDep, caller: Manager, image_id: str) -> Response:
    """Remove the entry (images already on hosts stay there)."""
    catalog.delete_image(ctx, caller, image_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
