"""Fleet read models (overview, server GPU holders) to public schemas."""

from __future__ import annotations

from collections import defaultdict

from gpuyard.api.converters import resources_public, server_public
from gpuyard.api.schemas.fleet import GpuHolderPublic, ServerPublic
from gpuyard.api.schemas.fleet_overview import (
    FleetOverviewPublic,
    FreeNowPublic,
    GpuModelCountPublic,
    ServerCountsPublic,
)
from gpuyard.domain.fleet_overview import FleetOverview, FreeNow
from gpuyard.domain.gpu_holders import GpuHolding, ServerDetail
from gpuyard.domain.resources import GPU_MILLI


def fleet_overview_public(overview: FleetOverview) -> FleetOverviewPublic:
    counts = overview.servers_by_status
    return FleetOverviewPublic(
        servers=ServerCountsPublic(
            total=sum(counts.values()),
            online=counts.get("online", 0),
            offline=counts.get("offline", 0),
            draining=counts.get("draining", 0),
            maintenance=counts.get("maintenance", 0),
        ),
        capacity=resources_public(overview.capacity),
        allocated=resources_public(overview.allocated),
        free=resources_public(overview.free),
        gpu_models=[
            GpuModelCountPublic(
                model=m.model,
                servers=m.servers,
                devices=m.devices,
                free_devices=m.free_devices,
                allocated=m.allocated_milli / GPU_MILLI,
            )
            for m in overview.gpu_models
        ],
        free_now=[free_now_public(f) for f in overview.free_now],
        gpu_share_min=overview.gpu_shares.min_milli / GPU_MILLI,
        gpu_share_step=overview.gpu_shares.step_milli / GPU_MILLI,
    )


def free_now_public(free: FreeNow) -> FreeNowPublic:
    return FreeNowPublic(
        gpu_model=free.gpu_model,
        servers=free.servers,
        gpu=free.whole_gpus,
        gpu_share=free.gpu_share_milli / GPU_MILLI,
        cpu=free.alongside.cpu,
        ram_gb=free.alongside.ram_gb,
        storage_gb=free.alongside.storage_gb,
        server_id=free.server_id,
        cluster_id=free.cluster_id,
    )


def server_detail_public(detail: ServerDetail) -> ServerPublic:
    """The server as in lists, each GPU with its holders (named where the reader may)."""
    public = server_public(detail.server)
    by_index: dict[int, list[GpuHolderPublic]] = defaultdict(list)
    for holding in detail.holdings:
        by_index[holding.gpu_index].append(gpu_holder_public(holding))
    gpus = [g.model_copy(update={"holders": by_index.get(g.index, [])}) for g in public.gpus]
    return public.model_copy(update={"gpus": gpus})


def gpu_holder_public(holding: GpuHolding) -> GpuHolderPublic:
    held_by = holding.held_by
    return GpuHolderPublic(
        share=holding.milli / GPU_MILLI,
        workload_id=held_by.workload_id if held_by else None,
        workload_name=held_by.name if held_by else None,
        owner_id=held_by.owner_id if held_by else None,
        owner=held_by.owner_email if held_by else None,
        replica=holding.replica,
    )
