"""API shapes of the fair-share view (services/scheduling/fairshare_view.py), for
``GET /fairshare`` and the queue's per-team figures."""

from __future__ import annotations

from gpuyard.api.schemas.fairshare import (
    FairShareTeamPublic,
    GpuModelSharePublic,
    ResourceAmounts,
    ResourceLimits,
    ResourceWeights,
)
from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB, Resources
from gpuyard.scheduler.fairshare import Vector
from gpuyard.services.scheduling.fairshare_view import FairShareEntry


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


def resource_amounts(res: Resources) -> ResourceAmounts:
    return _amounts(
        (float(res.cpu_milli), float(res.ram_mib), float(res.storage_mib), float(res.gpu_milli))
    )


def fairshare_team_public(e: FairShareEntry) -> FairShareTeamPublic:
    """One team of the fair-share view in API units."""
    return FairShareTeamPublic(
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
