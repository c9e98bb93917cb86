"""Queue order: which pending workload the cycle considers first.

The order is computed once per cycle from the snapshot (dominant shares are not updated
while the cycle admits work), which also makes it the order ``GET /queue`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.fairshare import FairShareTree
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, TeamQuota


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


def fairshare_tree(
    snapshot: ClusterSnapshot, pending: Sequence[PendingWorkload]
) -> FairShareTree | None:
    """The quota tree of ``snapshot`` with what each team runs and waits for, over the
    capacity of its servers (None without a tree)."""
    if not snapshot.teams:
        return None
    used: dict[str, Resources] = {}
    for replica in snapshot.running:
        team = replica.team_id
        if team is not None and team in snapshot.teams:
            used[team] = used.get(team, Resources()) + replica.resources
    wanted: dict[str, Resources] = {}
    for workload in pending:
        team = workload.team_id
        if team is not None and team in snapshot.teams:
            more = workload.resources.scaled(workload.replicas_missing)
            wanted[team] = wanted.get(team, Resources()) + more
    capacity = Resources()
    for server in snapshot.servers:
        capacity = capacity + server.capacity
    nodes = [
        replace(node, used=used.get(t, Resources()), pending=wanted.get(t, Resources()))
        for t, node in snapshot.teams.items()
    ]
    return FairShareTree(nodes, capacity)


QueueKey = tuple[int, int, float, float, float, float, str]


def queue_key(
    workload: PendingWorkload, shares: Mapping[str, float], tree: FairShareTree | None = None
) -> QueueKey:
    """Sort key of the queue; criteria, compared in turn:

    1. priority, highest first (5 before 1);
    2. with a quota tree (scheduler/fairshare.py), DRF among equal priorities: teams
       under their guarantee first, then the department with the lower weighted dominant
       share of the fleet, then the team with the lower one;
    3. the dominant share of the workload's team quota, lowest first — between teams of
       equal priority the team using less of its quota goes first (no team or no quota: 0);
    4. submit time, earliest first;
    5. deterministic tie-break: workload id.
    """
    team = workload.team_id
    share = shares.get(team, 0.0) if team is not None else 0.0
    rank, top, own = tree.order_key(team) if tree is not None else (1, 0.0, 0.0)
    return (-workload.priority, rank, top, own, share, workload.submitted_at, workload.workload_id)


def order_queue(
    pending: Sequence[PendingWorkload],
    quotas: Mapping[str, TeamQuota],
    tree: FairShareTree | None = None,
) -> list[PendingWorkload]:
    """``pending`` in the order the cycle considers it (see :func:`queue_key`)."""
    shares = {team: dominant_share(quota) for team, quota in quotas.items()}
    keys: dict[str | None, tuple[int, float, float]] = {}
    if tree is not None:
        # One key per team: order_key walks the tree.
        teams = {w.team_id for w in pending}
        keys = {t: tree.order_key(t) for t in teams}
    return sorted(
        pending,
        key=lambda w: (
            queue_key(w, shares)
            if tree is None
            else _with_tree(queue_key(w, shares), keys[w.team_id])
        ),
    )


def _with_tree(key: QueueKey, tree_key: tuple[int, float, float]) -> QueueKey:
    return (key[0], *tree_key, *key[4:])
