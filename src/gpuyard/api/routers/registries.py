"""Container registries (their passwords are write-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.image_converters import registry_public
from gpuyard.api.schemas.images import RegistriesPublic, RegistryCreate, RegistryPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.images import registries as registry_service

router = APIRouter(prefix="/registries", tags=["registries"])
Reader = Annotated[Caller, requires(Permission.REGISTRY_READ)]
Manager = Annotated[Caller, requires(Permission.REGISTRY_MANAGE)]


@router.get("", response_model=RegistriesPublic)
def list_registries(
    ctx: ContextDep, _caller: Reader, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> RegistriesPublic:
    registries, count = registry_service.list_registries(ctx, limit, offset)
    return RegistriesPublic(data=[registry_public(r) for r in registries], count=count)


@router.post("", response_model=RegistryPublic, status_code=status.HTTP_201_CREATED)
def create_registry(ctx: ContextDep, caller: Manager, body: RegistryCreate) -> RegistryPublic:
    """Add a registry; its password is stored encrypted and never returned."""
    registry = registry_service.create_registry(
        ctx, caller, body.name, body.url, body.username, body.password, body.insecure
    )
    return registry_public(registry)


@router.get("/{registry_id}", response_model=RegistryPublic)
def get_registry(ctx: ContextDep, _caller: Reader, registry_id: str) -> RegistryPublic:
    return registry_public(registry_service.get_registry(ctx, registry_id))


@router.delete("/{registry_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_registry(ctx: ContextDep, caller: Manager, registry_id: str) -> Response:
    registry_service.delete_registry(ctx, caller, registry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
