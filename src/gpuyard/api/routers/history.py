"""Utilisation and allocation over time (the dashboard's charts): a server with its GPUs,
and the fleet's totals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.history_converters import fleet_history_public, server_history_public
from gpuyard.api.schemas.history import FleetHistoryPublic, ServerHistoryPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.usage import HistoryWindow
from gpuyard.services.usage import history

router = APIRouter(tags=["history"])
Reader = Annotated[Caller, requires(Permission.FLEET_READ)]
WindowQuery = Annotated[
    HistoryWindow,
    Query(description="how far back: 1h (raw samples), 6h or 1d (1-minute), 7d or 30d (15-minute)"),
]
ServerId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/servers/{server_id}/history", response_model=ServerHistoryPublic)
def get_server_history(
    ctx: ContextDep,
    _caller: Reader,
    server_id: ServerId,
    window: WindowQuery = HistoryWindow.HOUR,
) -> ServerHistoryPublic:
    return server_history_public(history.server_history(ctx, server_id, window), server_id)


@router.get("/fleet/history", response_model=FleetHistoryPublic)
def get_fleet_history(
    ctx: ContextDep, _caller: Reader, window: WindowQuery = HistoryWindow.HOUR
) -> FleetHistoryPublic:
    return fleet_history_public(history.fleet_history(ctx, window))
