"""Servers."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.converters import server_public
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.fleet_converters import server_detail_public
from gpuyard.api.schemas.fleet import (
    ServerCreate,
    ServerEventPublic,
    ServerEventsPublic,
    ServerPublic,
    ServersPublic,
    ServerUpdate,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.server_state import ServerStatus
from gpuyard.services.fleet import servers as server_service
from gpuyard.services.fleet.server_detail import server_detail
from gpuyard.services.fleet.server_status import list_server_events as list_events
from gpuyard.services.fleet.servers import GpuSpec, ServerRegistration

router = APIRouter(prefix="/servers", tags=["servers"])
Reader = Annotated[Caller, requires(Permission.FLEET_READ)]
Manager = Annotated[Caller, requires(Permission.SERVER_MANAGE)]


@router.get("", response_model=ServersPublic)
def list_servers(
    ctx: ContextDep,
    _caller: Reader,
    cluster_id: Annotated[str | None, Query(max_length=64)] = None,
    status: ServerStatus | None = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> ServersPublic:
    rows, count = server_service.list_servers(ctx, cluster_id, status, limit, offset)
    return ServersPublic(data=[server_public(r) for r in rows], count=count)


@router.post("", response_model=ServerPublic, status_code=status.HTTP_201_CREATED)
def create_server(ctx: ContextDep, caller: Manager, body: ServerCreate) -> ServerPublic:
    registration = ServerRegistration(
        name=body.name,
        cluster_id=body.cluster_id,
        cpu=body.cpu,
        ram_gb=body.ram_gb,
        storage_gb=body.storage_gb,
        gpus=[GpuSpec(g.model, g.memory_gb, g.uuid) for g in body.gpus],
        labels=body.labels,
        agent_url=body.agent_url,
        agent_token=body.agent_token,
        agent_tls_cert=body.agent_tls_cert,
        host_ports=body.host_ports,
    )
    return server_public(server_service.register_server(ctx, caller, registration))


@router.get("/{server_id}", response_model=ServerPublic)
def get_server(ctx: ContextDep, caller: Reader, server_id: str) -> ServerPublic:
    """The server with its GPU cards: each GPU's holders, named only where the caller may
    read the workload (else only its share, "in use")."""
    return server_detail_public(server_detail(ctx, caller, server_id))


@router.get("/{server_id}/events", response_model=ServerEventsPublic)
def list_server_events(
    ctx: ContextDep,
    _caller: Reader,
    server_id: str,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> ServerEventsPublic:
    events, count = list_events(ctx, server_id, limit, offset)
    return ServerEventsPublic(
        data=[ServerEventPublic(**asdict(event)) for event in events], count=count
    )


@router.patch("/{server_id}", response_model=ServerPublic)
def update_server(
    ctx: ContextDep, caller: Manager, server_id: str, body: ServerUpdate
) -> ServerPublic:
    server_service.update_server(ctx, caller, server_id, body.status, body.labels)
    return server_public(server_service.get_server(ctx, server_id))


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_server(ctx: ContextDep, caller: Manager, server_id: str) -> Response:
    server_service.delete_server(ctx, caller, server_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
