"""The fleet overview: totals, status counts, GPU models and what could start now.

A read-only view over the scheduler's own snapshot (``ctx.snapshot_cache``, the one the
scheduling loop and GET /queue refresh), so the dashboard sees the servers, counters and
devices the scheduler decides over, not a second reading of the tables. Which servers
take new work is the domain's rule (``accepts_new_work``, the scheduler's status
filter's too); which devices a request could get follows the GPU slot rules
(``scheduler/gpu_slots.py``: whole GPUs take free devices, a share packs into the room
left on one device). Team quotas are not applied: the caller's quota is the
scheduler's answer at submission time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from gpuyard.domain.fleet_overview import (
    FleetOverview,
    FreeNow,
    GpuModelCount,
    largest_gpu_share,
)
from gpuyard.domain.resources import DEFAULT_GPU_SHARES, GPU_MILLI, GpuShareRule, Resources
from gpuyard.domain.server_state import ServerStatus, accepts_new_work
from gpuyard.runtimes.registry import runs_containers
from gpuyard.scheduler.snapshot import ServerView
from gpuyard.services.context import ServiceContext


def fleet_overview(ctx: ServiceContext, cluster_id: str | None = None) -> FleetOverview:
    """The fleet's totals and what could start now, from the scheduler's snapshot; only
    the servers of ``cluster_id`` when given (none for an unknown cluster)."""
    with ctx.db.read() as session:
        container_kinds = ctx.runtimes.kinds_where(runs_containers)
        state = ctx.snapshot_cache.refresh(session, container_kinds)
    servers = state.snapshot.servers
    if cluster_id is not None:
        servers = tuple(s for s in servers if s.cluster_id == cluster_id)
    return overview_of(servers, ctx.settings.gpu_shares)


def overview_of(
    servers: Sequence[ServerView], shares: GpuShareRule = DEFAULT_GPU_SHARES
) -> FleetOverview:
    """The overview of ``servers`` (pure: the tests feed it views directly); the largest
    GPU share free now follows ``shares``, the rule requests are validated against."""
    by_status = dict.fromkeys((s.value for s in ServerStatus), 0)
    capacity = allocated = free = Resources()
    for server in servers:
        by_status[server.status.value] += 1
        capacity += server.capacity
        allocated += server.allocated
        if accepts_new_work(server.status):
            free += server.free
    return FleetOverview(
        servers_by_status=by_status,
        capacity=capacity,
        allocated=allocated,
        free=free,
        gpu_models=_gpu_models(servers),
        free_now=free_now(servers, shares),
        gpu_shares=shares,
    )


def _gpu_models(servers: Sequence[ServerView]) -> tuple[GpuModelCount, ...]:
    servers_with: dict[str, int] = defaultdict(int)
    devices: dict[str, int] = defaultdict(int)
    free_devices: dict[str, int] = defaultdict(int)
    allocated: dict[str, int] = defaultdict(int)
    for server in servers:
        open_for_work = accepts_new_work(server.status)
        for model in {g.model for g in server.gpus}:
            servers_with[model] += 1
        for gpu in server.gpus:
            devices[gpu.model] += 1
            allocated[gpu.model] += gpu.allocated_milli
            if open_for_work and gpu.allocated_milli == 0:
                free_devices[gpu.model] += 1
    return tuple(
        GpuModelCount(model, servers_with[model], count, free_devices[model], allocated[model])
        for model, count in sorted(devices.items())
    )


def free_now(
    servers: Sequence[ServerView], shares: GpuShareRule = DEFAULT_GPU_SHARES
) -> tuple[FreeNow, ...]:
    """Per GPU model (and None: no GPU), the largest request that could start now on one
    server that takes new work (see :class:`FreeNow`)."""
    open_servers = [s for s in servers if accepts_new_work(s.status)]
    models = sorted({g.model for s in open_servers for g in s.gpus})
    entries = [_free_for(open_servers, None, shares)]
    entries += [_free_for(open_servers, model, shares) for model in models]
    return tuple(entries)


def _free_for(servers: Sequence[ServerView], model: str | None, shares: GpuShareRule) -> FreeNow:
    best: ServerView | None = None
    best_key: tuple[int, int, int, int] | None = None
    share = 0
    candidates = 0
    for server in servers:
        devices = [g for g in server.gpus if model is None or g.model == model]
        if model is not None and not devices:
            continue
        candidates += 1
        room = server.free
        whole = sum(1 for g in devices if g.allocated_milli == 0) if model is not None else 0
        if model is not None:
            rooms = (GPU_MILLI - g.allocated_milli for g in devices)
            share = max([share, *(largest_gpu_share(room, shares) for room in rooms)])
        key = (whole, room.cpu_milli, room.ram_mib, room.storage_mib)
        if best_key is None or key > best_key:
            best, best_key = server, key
    if best is None or best_key is None:
        return FreeNow(model, 0, 0, 0, Resources(), None, None)
    whole, cpu, ram, storage = best_key
    return FreeNow(
        gpu_model=model,
        servers=candidates,
        whole_gpus=whole,
        gpu_share_milli=share,
        alongside=Resources(max(cpu, 0), max(ram, 0), max(storage, 0), 0),
        server_id=best.id,
        cluster_id=best.cluster_id,
    )
