"""The fleet as a whole: totals, status counts, GPU models, what could start now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.fleet_converters import fleet_overview_public
from gpuyard.api.schemas.fleet_overview import FleetOverviewPublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.fleet.overview import fleet_overview

router = APIRouter(prefix="/fleet", tags=["fleet"])


@router.get("/overview", response_model=FleetOverviewPublic)
def get_overview(
    ctx: ContextDep,
    _caller: Annotated[Caller, requires(Permission.FLEET_READ)],
    cluster_id: Annotated[
        str | None, Query(max_length=64, description="only this cluster's servers")
    ] = None,
) -> FleetOverviewPublic:
    """Totals, allocation and free capacity per dimension, servers by status, devices per
    GPU model, and per model the largest request that could start now on one server (the
    launch dialog's hint; aggregates only, no workload is named)."""
    return fleet_overview_public(fleet_overview(ctx, cluster_id))
