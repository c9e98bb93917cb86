"""The fair-share view: each team's guarantee, usage, borrowed and fair share (issue 21)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from gpuyard.api.authorization import requires
from gpuyard.api.deps import ContextDep
from gpuyard.api.schemas.fairshare import (
    FairSharePublic,
    FairShareTeamPublic,
    GpuModelSharePublic,
    ResourceAmounts,
    ResourceLimits,
    ResourceWeights,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.scheduler.fairshare import Vector
from gpuyard.services.scheduling.fairshare_view import fairshare_view

router = APIRouter(prefix="/fairshare", tags=["queue"])
Reader = Annotated[Caller, requires(Permission.FAIRSHARE_READ)]


def _amounts(vector: Vector) -> ResourceAmounts:
    cpu, ram, storage, gpu = vector
    return ResourceAmounts(
        cpu=round(cpu / 1000, 3),
        ram_gb=round(ram / MIB_PER_GB, 3),
        storage_gb=round(storage / MIB_PER_GB, 3),
        gpu=round(gpu / GPU_MILLI, 3),
    )


def _hours(vector: Vector) -> Vector:
    return (vector[0] / 3600, vector[1] / 3600, vector[2] / 3600, vector[3] / 3600)


def _factor(penalty: float) -> float:
    """Slurm's ``2^(-U/S)`` from the queue's multiplier ``2^(U/S)``; shown to six places
    (a tiny factor shows as 0 rather than as a float the JSON client cannot read back)."""
    return round(1.0 / penalty, 6) if penalty > 0 else 0.0


def _limits(limit: tuple[int | None, int | None, int | None, int | None]) -> ResourceLimits:
    cpu, ram, _storage, gpu = limit  # quotas have no storage dimension
    return ResourceLimits(
        cpu=None if cpu is None else round(cpu / 1000, 3),
        ram_gb=None if ram is None else round(ram / MIB_PER_GB, 3),
        gpu=None if gpu is None else round(gpu / GPU_MILLI, 3),
    )


def _pending(demand: Vector, used: Vector) -> Vector:
    """What waiting work asks for: demand is used plus pending (never below zero, so a
    rounding difference cannot show a negative amount)."""
    d_cpu, d_ram, d_storage, d_gpu = demand
    u_cpu, u_ram, u_storage, u_gpu = used
    return (
        max(d_cpu - u_cpu, 0.0),
        max(d_ram - u_ram, 0.0),
        max(d_storage - u_storage, 0.0),
        max(d_gpu - u_gpu, 0.0),
    )


def _resources(res: Resources) -> ResourceAmounts:
    return _amounts(
        (float(res.cpu_milli), float(res.ram_mib), float(res.storage_mib), float(res.gpu_milli))
    )


@router.get("", response_model=FairSharePublic)
def get_fairshare(ctx: ContextDep, caller: Reader) -> FairSharePublic:
    """Every team of the quota tree (departments first, each followed by its teams) with
    its guarantee, usage, borrowing and fair share. Admins and operators see every team;
    users see their own teams and the departments above them."""
    capacity, entries = fairshare_view(ctx, caller)
    data = [
        FairShareTeamPublic(
            team_id=e.share.team_id,
            name=e.name,
            parent_id=e.share.parent_id,
            weight=e.share.weight,
            guarantee=_amounts(e.share.guarantee),
            limit=_limits(e.limit),
            used=_amounts(e.share.used),
            pending=_amounts(_pending(e.share.demand, e.share.used)),
            demand=_amounts(e.share.demand),
            fair_share=_amounts(e.share.fair_share),
            borrowed=_amounts(e.share.borrowed),
            dominant_share=round(e.share.dominant_share, 6),
            under_guarantee=e.share.under_guarantee,
            weights=ResourceWeights(
                cpu=e.share.weights[0],
                ram_gb=e.share.weights[1],
                storage_gb=e.share.weights[2],
                gpu=e.share.weights[3],
            ),
            gpu_models=[
                GpuModelSharePublic(
                    model=m.model,
                    guarantee=round(m.guarantee / GPU_MILLI, 3),
                    limit=None if m.limit is None else round(m.limit / GPU_MILLI, 3),
                    used=round(m.used / GPU_MILLI, 3),
                    weight=m.weight,
                    fair_share=None if m.fair_share is None else round(m.fair_share / GPU_MILLI, 3),
                )
                for m in e.gpu_models
            ],
            decayed_usage=_amounts(_hours(e.share.history)),
            fairshare_factor=_factor(e.share.usage_penalty),
        )
        for e in entries
    ]
    return FairSharePublic(
        capacity=_resources(capacity),
        half_life_s=ctx.settings.fairshare_half_life_s,
        data=data,
        count=len(data),
    )
