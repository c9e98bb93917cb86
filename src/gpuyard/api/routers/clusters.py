"""Clusters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.converters import cluster_public
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.schemas.fleet import ClusterCreate, ClusterPublic, ClustersPublic, ClusterUpdate
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.fleet import cluster_changes
from gpuyard.services.fleet import clusters as cluster_service

router = APIRouter(prefix="/clusters", tags=["clusters"])
Reader = Annotated[Caller, requires(Permission.FLEET_READ)]
Manager = Annotated[Caller, requires(Permission.CLUSTER_MANAGE)]


@router.get("", response_model=ClustersPublic)
def list_clusters(
    ctx: ContextDep, _caller: Reader, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> ClustersPublic:
    rows, count = cluster_service.list_clusters(ctx, limit, offset)
    return ClustersPublic(data=[cluster_public(r) for r in rows], count=count)


@router.post("", response_model=ClusterPublic, status_code=status.HTTP_201_CREATED)
def create_cluster(ctx: ContextDep, caller: Manager, body: ClusterCreate) -> ClusterPublic:
    row = cluster_service.create_cluster(ctx, caller, body.name, body.kind, body.kubeconfig)
    return cluster_public(row)


@router.get("/{cluster_id}", response_model=ClusterPublic)
def get_cluster(ctx: ContextDep, _caller: Reader, cluster_id: str) -> ClusterPublic:
    return cluster_public(cluster_service.get_cluster(ctx, cluster_id))


@router.patch("/{cluster_id}", response_model=ClusterPublic)
def update_cluster(
    ctx: ContextDep, caller: Manager, cluster_id: str, body: ClusterUpdate
) -> ClusterPublic:
    """Rename the cluster (409 when the name is taken)."""
    return cluster_public(cluster_changes.rename_cluster(ctx, caller, cluster_id, body.name))


@router.delete("/{cluster_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_cluster(ctx: ContextDep, caller: Manager, cluster_id: str) -> Response:
    """Delete an empty cluster: 409 naming the servers or active workloads that remain.
    Finished workloads that asked for it forget it."""
    cluster_changes.delete_cluster(ctx, caller, cluster_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
