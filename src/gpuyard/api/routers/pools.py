"""Warm pools: specs, status and admin operations (admins and operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.pool_converters import pool_public
from gpuyard.api.schemas.pools import PoolCreate, PoolPublic, PoolsPublic, PoolUpdate
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.pools import specs as pool_service
from gpuyard.services.pools.specs import PoolChanges, PoolDefinition

router = APIRouter(prefix="/pools", tags=["pools"])
Manager = Annotated[Caller, requires(Permission.POOL_MANAGE)]


@router.get("", response_model=PoolsPublic)
def list_pools(
    ctx: ContextDep, _caller: Manager, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> PoolsPublic:
    """Every pool by name, with its warm containers and their counts."""
    pools, count = pool_service.list_pools(ctx, limit, offset)
    return PoolsPublic(data=[pool_public(p) for p in pools], count=count)


@router.post("", response_model=PoolPublic, status_code=status.HTTP_201_CREATED)
def create_pool(ctx: ContextDep, caller: Manager, body: PoolCreate) -> PoolPublic:
    """Define a pool; the pool loop starts its warm containers."""
    definition = PoolDefinition(
        name=body.name,
        image_type=body.image_type,
        image=body.image,
        server_id=body.server_id,
        cluster_id=body.cluster_id,
        target_size=body.target_size,
        port_min=body.port_min,
        port_max=body.port_max,
        container_port=body.container_port,
        cpu=body.cpu,
        ram_gb=body.ram_gb,
        storage_gb=body.storage_gb,
        gpu=body.gpu,
        command=body.command,
        env=body.env,
        files_path=body.files_path,
    )
    return pool_public(pool_service.create_pool(ctx, caller, definition))


@router.get("/{pool_id}", response_model=PoolPublic)
def get_pool(ctx: ContextDep, _caller: Manager, pool_id: str) -> PoolPublic:
    return pool_public(pool_service.get_pool(ctx, pool_id))


@router.patch("/{pool_id}", response_model=PoolPublic)
def update_pool(ctx: ContextDep, caller: Manager, pool_id: str, body: PoolUpdate) -> PoolPublic:
    """Resize (``target_size``) or change a pool."""
    changes = PoolChanges(
        target_size=body.target_size,
        image=body.image,
        port_min=body.port_min,
        port_max=body.port_max,
    )
    return pool_public(pool_service.update_pool(ctx, caller, pool_id, changes))


@router.post("/{pool_id}/reinitialise", response_model=PoolPublic)
def reinitialise_pool(ctx: ContextDep, caller: Manager, pool_id: str) -> PoolPublic:
    """Replace every available warm container with a fresh one."""
    return pool_public(pool_service.reinitialise_pool(ctx, caller, pool_id))


@router.post("/{pool_id}/members/{workload_id}/release", response_model=PoolPublic)
def release_member(ctx: ContextDep, caller: Manager, pool_id: str, workload_id: str) -> PoolPublic:
    """Take an assigned warm container back from its user: their workload stops and a
    fresh container takes its place in the pool (a used one is never given to another
    user: its files and filesystem hold the previous user's data)."""
    return pool_public(pool_service.release_member(ctx, caller, pool_id, workload_id))


@router.delete("/{pool_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_pool(ctx: ContextDep, caller: Manager, pool_id: str) -> Response:
    """Delete a pool: its available warm containers stop; assigned ones stay their users'."""
    pool_service.delete_pool(ctx, caller, pool_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
