"""Queue order: which pending workload the cycle considers first.

The order is computed once per cycle from the snapshot (dominant shares are not updated
while the cycle admits work), which also makes it the order ``GET /queue`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gpuyard.scheduler.snapshot import PendingWorkload, TeamQuota


def dominant_share(quota: TeamQuota | None) -> float:
    """A team's largest used/limit ratio over its limited dimensions (0 without a quota).

    A limit of 0 counts as fully used once anything is in use (share infinity), else 0.
    """
    if quota is None:
        return 0.0
    share = 0.0
    for limit, used in (
        (quota.cpu_milli, quota.used.cpu_milli),
        (quota.ram_mib, quota.used.ram_mib),
        (quota.gpu_milli, quota.used.gpu_milli),
    ):
        if limit is None:
            continue
        if limit > 0:
            share = max(share, used / limit)
        elif used > 0:
            share = float("inf")
    return share


def queue_key(
    workload: PendingWorkload, shares: Mapping[str, float]
) -> tuple[int, float, float, str]:
    """Sort key of the queue; criteria, compared in turn:

    1. priority, highest first (5 before 1);
    2. the dominant share of the workload's team quota, lowest first — between teams of
       equal priority the team using less of its quota goes first (no team or no quota: 0);
    3. submit time, earliest first;
    4. deterministic tie-break: workload id.
    """
    team = workload.team_id
    share = shares.get(team, 0.0) if team is not None else 0.0
    return (-workload.priority, share, workload.submitted_at, workload.workload_id)


def order_queue(
    pending: Sequence[PendingWorkload], quotas: Mapping[str, TeamQuota]
) -> list[PendingWorkload]:
    """``pending`` in the order the cycle considers it (see :func:`queue_key`)."""
    shares = {team: dominant_share(quota) for team, quota in quotas.items()}
    return sorted(pending, key=lambda w: queue_key(w, shares))
