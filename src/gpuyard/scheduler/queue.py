"""Queue order: which pending workload the cycle considers first.

The order is computed once per cycle from the snapshot (dominant shares are not updated
while the cycle admits work), which also makes it the order ``GET /queue`` shows.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.fairshare import (
    FairShareTree,
    OrderKey,
    QueueNode,
    Vector,
    weighted_models,
)
from gpuyard.scheduler.gpu_match import ModelKey, device_matches, model_key
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, ServerView, TeamQuota


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
    weighted = weighted_models(snapshot.teams.values())
    return FairShareTree(
        nodes,
        capacity,
        snapshot.usage_half_life_s,
        model_held(snapshot, snapshot.teams, weighted),
        model_capacity(snapshot.servers, weighted),
        model_pending(pending, snapshot.teams, weighted),
    )


def model_capacity(
    servers: Iterable[ServerView], models: frozenset[ModelKey]
) -> dict[ModelKey, float]:
    """Milli-GPUs of the devices of each model in ``models`` (a weighted model's
    capacity)."""
    capacity: dict[ModelKey, float] = {}
    if not models:
        return capacity
    for server in servers:
        for gpu in server.gpus:
            for key in models:
                if device_matches(key, gpu.model):
                    capacity[key] = capacity.get(key, 0.0) + GPU_MILLI
    return capacity


def model_pending(
    pending: Iterable[PendingWorkload],
    teams: Mapping[str, QueueNode],
    models: frozenset[ModelKey],
) -> dict[tuple[str, ModelKey], float]:
    """Milli-GPUs each team's waiting work pinned to exactly one of ``models`` asks for
    (work pinned to several models, or none, is not a claim on one model)."""
    out: dict[tuple[str, ModelKey], float] = {}
    if not models:
        return out
    for workload in pending:
        team = workload.team_id
        key = _pinned_model(workload)
        if team is None or team not in teams or key not in models:
            continue
        slot = (team, key)
        wanted = workload.resources.gpu_milli * workload.replicas_missing
        out[slot] = out.get(slot, 0.0) + wanted
    return out


def model_held(
    snapshot: ClusterSnapshot,
    teams: Mapping[str, QueueNode],
    weighted: frozenset[ModelKey] = frozenset(),
) -> dict[tuple[str, ModelKey], float]:
    """Milli-GPUs each team's own workloads hold of each model it has a per-model
    guarantee of, and of every ``weighted`` model (counted from the devices' models;
    empty when there are neither)."""
    wanted: dict[str, list[ModelKey]] = {}
    for team, node in teams.items():
        keys = {
            key for model, milli in node.gpu_models if milli > 0 and (key := model_key(model))
        } | weighted
        if keys:
            wanted[team] = list(keys)
    held: dict[tuple[str, ModelKey], float] = {}
    if not wanted:
        return held
    devices = {(s.id, g.index): g.model for s in snapshot.servers for g in s.gpus}
    for replica in snapshot.running:
        owner = replica.team_id
        if owner is None or owner not in wanted:
            continue
        for index, milli in replica.gpu_allocation:
            device = devices.get((replica.server_id, index))
            if device is None:
                continue
            for key in wanted[owner]:
                if device_matches(key, device):
                    held[(owner, key)] = held.get((owner, key), 0.0) + milli
    return held


def queue_key(
    workload: PendingWorkload, shares: Mapping[str, float]
) -> tuple[int, float, float, str]:
    """Sort key of the queue; criteria, compared in turn:

    1. priority, highest first (5 before 1);
    2. the dominant share of the workload's team quota, lowest first — between teams of
       equal priority the team using less of its quota goes first (no team or no quota: 0);
    3. submit time, earliest first;
    4. deterministic tie-break: workload id.

    With a quota tree, :func:`order_queue` then merges each priority level by fair share
    (scheduler/fairshare.py), keeping this order within each team.
    """
    team = workload.team_id
    share = shares.get(team, 0.0) if team is not None else 0.0
    return (-workload.priority, share, workload.submitted_at, workload.workload_id)


def order_queue(
    pending: Sequence[PendingWorkload],
    quotas: Mapping[str, TeamQuota],
    tree: FairShareTree | None = None,
) -> list[PendingWorkload]:
    """``pending`` in the order the cycle considers it (see :func:`queue_key`).

    With a quota tree, equal priorities are merged by progressive filling: each next
    workload comes from the team whose key is lowest counting what was put ahead of it as
    running, so teams interleave instead of one team's whole backlog taking a cycle's
    freed capacity (the order is still computed once per cycle)."""
    shares = {team: dominant_share(quota) for team, quota in quotas.items()}
    ordered = sorted(pending, key=lambda w: queue_key(w, shares))
    if tree is None:
        return ordered
    out: list[PendingWorkload] = []
    start = 0
    while start < len(ordered):
        end = start
        priority = ordered[start].priority
        while end < len(ordered) and ordered[end].priority == priority:
            end += 1
        out.extend(_fill(ordered[start:end], tree))
        start = end
    return out


def _fill(level: Sequence[PendingWorkload], tree: FairShareTree) -> list[PendingWorkload]:
    """One priority level by progressive filling (each team's own order kept). A team's
    key is that of its next workload: with per-model guarantees, work pinned to a
    guaranteed model is under guarantee by that model's rule (:meth:`FairShareTree.order_key`)."""
    by_team: dict[str | None, deque[PendingWorkload]] = {}
    for workload in level:
        team = workload.team_id if workload.team_id in tree.nodes else None
        by_team.setdefault(team, deque()).append(workload)
    added: dict[str, Vector] = {}
    per_model = bool(tree.model_guarantee or tree.weighted_models)
    model_added: dict[tuple[str, ModelKey], float] = {}
    share_added: dict[tuple[str, ModelKey], float] = {}

    def key_of(team: str | None) -> OrderKey:
        if not per_model:
            return tree.order_key(team, added)
        model = _pinned_model(by_team[team][0])
        return tree.order_key(team, added, model, model_added, share_added)

    heap: list[tuple[OrderKey, str, str | None]] = [
        (key_of(team), team or "", team) for team in by_team
    ]
    heapq.heapify(heap)
    out: list[PendingWorkload] = []
    while heap:
        key, tie, team = heapq.heappop(heap)
        if team is not None and tree.nodes[team].parent_id is not None:
            # A sibling's turn under the same department raised the department's ratio
            # since this key was pushed: re-file it with the fresh key (keys only grow as
            # ``added`` does, so a key that is still current is the least). A top-level
            # team's key moves only with its own turns, when it is recomputed anyway.
            fresh = key_of(team)
            if fresh > key:
                heapq.heappush(heap, (fresh, tie, team))
                continue
        queue = by_team[team]
        workload = queue.popleft()
        out.append(workload)
        if team is not None:
            res = workload.resources.scaled(max(1, workload.replicas_missing))
            more: Vector = (
                float(res.cpu_milli),
                float(res.ram_mib),
                float(res.storage_mib),
                float(res.gpu_milli),
            )
            for node in {team, tree.top_of(team)}:
                was = added.get(node, (0.0, 0.0, 0.0, 0.0))
                added[node] = (
                    was[0] + more[0],
                    was[1] + more[1],
                    was[2] + more[2],
                    was[3] + more[3],
                )
            if per_model:
                model = _pinned_model(workload)
                if tree.pinned_guarantee(team, model) is not None:
                    slot = (team, model)
                    model_added[slot] = model_added.get(slot, 0.0) + more[3]
                if model in tree.weighted_models:
                    for node in {team, tree.top_of(team)}:
                        share_added[(node, model)] = share_added.get((node, model), 0.0) + more[3]
        if queue:
            heapq.heappush(heap, (key_of(team), team or "", team))
    return out


def _pinned_model(workload: PendingWorkload) -> ModelKey:
    """The model key of a GPU workload's request (None: any model, or no GPU)."""
    if workload.resources.gpu_milli <= 0:
        return None
    return model_key(workload.gpu_model)
