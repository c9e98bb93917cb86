"""Teams as nodes of the quota tree (scheduler/fairshare.py), for the scheduler's snapshot
and the fair-share view alike."""

from __future__ import annotations

from gpuyard.domain.identity import Team
from gpuyard.domain.resources import Resources
from gpuyard.scheduler.fairshare import QueueNode, Vector


def queue_node(
    team: Team,
    used: Resources | None = None,
    pending: Resources | None = None,
    history: Vector | None = None,
) -> QueueNode:
    """``team``'s node: its parent, guarantee, limit (its quota) and weights, with its
    decayed past usage (``history``, time-based fair share) when given."""
    return QueueNode(
        team_id=team.id,
        parent_id=team.parent_id,
        guarantee=Resources(
            team.guarantee_cpu_milli,
            team.guarantee_ram_mib,
            team.guarantee_storage_mib,
            team.guarantee_gpu_milli,
        ),
        limit=(team.quota_cpu_milli, team.quota_ram_mib, None, team.quota_gpu_milli),
        weight=team.quota_weight,
        used=used or Resources(),
        pending=pending or Resources(),
        history=history or (0.0, 0.0, 0.0, 0.0),
        gpu_models=team.guarantee_gpu_models,
        gpu_model_limits=team.limit_gpu_models,
        weights=_weights(team),
        gpu_model_weights=tuple((m, float(w)) for m, w in team.weight_gpu_models),
    )


def _weights(team: Team) -> Vector | None:
    """The team's per-dimension weights, None when every resource has its one weight."""
    if not team.quota_weights:
        return None
    cpu, ram, storage, gpu = team.resource_weights()
    return (float(cpu), float(ram), float(storage), float(gpu))


def is_placed(team: Team) -> bool:
    """Whether an admin gave ``team`` a place in the tree (a parent, a guarantee, a
    weight other than 1, per-resource or per-GPU-model weights, or a per-GPU-model
    limit)."""
    return (
        team.parent_id is not None
        or team.quota_weight != 1
        or bool(team.quota_weights)
        or bool(team.weight_gpu_models)
        or bool(team.limit_gpu_models)
        or any(
            (
                team.guarantee_cpu_milli,
                team.guarantee_ram_mib,
                team.guarantee_storage_mib,
                team.guarantee_gpu_milli,
            )
        )
    )
