"""The fair-share view: each team's guarantee, usage, borrowing and fair share over the
quota tree (scheduler/fairshare.py), from the scheduler's own snapshot."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Scope, scope_of
from gpuyard.domain.identity import Team
from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.runtimes.registry import runs_containers
from gpuyard.scheduler.fairshare import FairShareTree, TeamShare, weighted_models
from gpuyard.scheduler.gpu_match import ModelKey, device_matches, model_key
from gpuyard.scheduler.queue import model_capacity, model_held, model_pending
from gpuyard.scheduler.snapshot import ClusterSnapshot
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.quota_tree import queue_node
from gpuyard.store import team_usage
from gpuyard.store import teams as team_store


@dataclass(frozen=True)
class ModelShare:
    """One GPU model a team has a guarantee, limit or weight of (milli-GPUs)."""

    model: str
    guarantee: int = 0
    limit: int | None = None
    #: Held on devices of the model (a department: with its teams).
    used: int = 0
    #: The team's own weight of the model; None: its GPU weight.
    weight: int | None = None
    #: Its fair share of the model, where some team weighs the model (else None).
    fair_share: float | None = None


@dataclass(frozen=True)
class FairShareEntry:
    """One team of the view, with its name and the fleet capacity shares are out of."""

    name: str
    share: TeamShare
    #: Per-GPU-model guarantees, limits and weights, in the order the team names them.
    gpu_models: tuple[ModelShare, ...] = ()
    #: The team's limit (its quota) in internal units per dimension (cpu, ram, storage,
    #: gpu); None where unlimited.
    limit: tuple[int | None, int | None, int | None, int | None] = (None, None, None, None)


def fairshare_view(ctx: ServiceContext, caller: Caller) -> tuple[Resources, list[FairShareEntry]]:
    """(the online fleet's capacity, every team the caller may see in tree order).

    Admins and operators see every team; users see the teams they belong to and the
    departments above them (FAIRSHARE_READ, scope MEMBER)."""
    with ctx.db.read() as session:
        state = ctx.snapshot_cache.refresh(session, ctx.runtimes.kinds_where(runs_containers))
        teams = team_store.all_teams(session)
        half_life = ctx.settings.fairshare_half_life_s
        history = team_usage.decayed_usage(session) if half_life is not None else {}
        scope = scope_of(caller.role, Permission.FAIRSHARE_READ)
        mine: set[str] | None = None
        if scope is not Scope.ANY:
            mine = team_store.member_team_ids(session, caller.user_id)
    capacity = Resources()
    for server in state.snapshot.servers:
        if server.status is ServerStatus.ONLINE:
            capacity = capacity + server.capacity
    used: dict[str, Resources] = defaultdict(Resources)
    for replica in state.snapshot.running:
        if replica.team_id is not None:
            used[replica.team_id] = used[replica.team_id] + replica.resources
    pending: dict[str, Resources] = defaultdict(Resources)
    for workload in state.pending:
        if workload.team_id is not None:
            wanted = workload.resources.scaled(workload.replicas_missing)
            pending[workload.team_id] = pending[workload.team_id] + wanted
    nodes = [
        queue_node(
            t,
            used.get(t.id),
            pending.get(t.id),
            history[t.id].history if t.id in history else None,
        )
        for t in teams
    ]
    by_id = {node.team_id: node for node in nodes}
    weighted = weighted_models(nodes)
    online = [s for s in state.snapshot.servers if s.status is ServerStatus.ONLINE]
    tree = FairShareTree(
        nodes,
        capacity,
        half_life,
        model_held(state.snapshot, by_id, weighted),
        model_capacity(online, weighted),
        model_pending(state.pending, by_id, weighted),
    )
    names = {t.id: t.name for t in teams}
    limits = {node.team_id: node.limit for node in nodes}
    visible = set(names) if mine is None else _with_departments(mine, tree)
    models = _model_usage(state.snapshot, teams, tree)
    entries = [
        FairShareEntry(names[s.team_id], s, models.get(s.team_id, ()), limits[s.team_id])
        for s in tree.shares(names.__getitem__)
        if s.team_id in visible
    ]
    return capacity, entries


@dataclass
class _ModelRow:
    """One GPU model of a team's guarantee, limit or weight, named as the first of them
    names it."""

    model: str
    guarantee: int = 0
    limit: int | None = None
    weight: int | None = None


def _model_usage(
    snapshot: ClusterSnapshot, teams: list[Team], tree: FairShareTree
) -> dict[str, tuple[ModelShare, ...]]:
    """Each team with per-model guarantees, limits or weights, and every team while some
    team weighs a model (its fair share of it): what it holds on devices of each model,
    a department's holdings with its teams' (what its limit covers), models in the order
    the guarantee, the limit, then the weights name them (a weighted model no team
    names, by the first team's spelling)."""
    weighted: dict[ModelKey, str] = {}
    for node in teams:
        for model, _ in node.weight_gpu_models:
            weighted.setdefault(model_key(model), model)
    rows: dict[str, dict[ModelKey, _ModelRow]] = {}
    for node in teams:
        if not (
            node.guarantee_gpu_models or node.limit_gpu_models or node.weight_gpu_models or weighted
        ):
            continue
        mine: dict[ModelKey, _ModelRow] = {}
        for model, milli in node.guarantee_gpu_models:
            mine.setdefault(model_key(model), _ModelRow(model)).guarantee = milli
        for model, milli in node.limit_gpu_models:
            mine.setdefault(model_key(model), _ModelRow(model)).limit = milli
        for model, weight in node.weight_gpu_models:
            mine.setdefault(model_key(model), _ModelRow(model)).weight = weight
        for key, model in weighted.items():
            mine.setdefault(key, _ModelRow(model))
        rows[node.id] = mine
    if not rows:
        return {}
    parent_of = {t.id: t.parent_id for t in teams}
    devices = {
        (server.id, gpu.index): gpu.model for server in snapshot.servers for gpu in server.gpus
    }
    held: dict[tuple[str, ModelKey], int] = defaultdict(int)
    for replica in snapshot.running:
        owner = replica.team_id
        if owner is None:
            continue
        counted = [owner] if owner in rows else []
        parent = parent_of.get(owner)
        if parent is not None and parent in rows:
            counted.append(parent)
        for holder in counted:
            for key in rows[holder]:
                for index, milli in replica.gpu_allocation:
                    device = devices.get((replica.server_id, index))
                    if device is not None and device_matches(key, device):
                        held[(holder, key)] += milli
    return {
        team: tuple(
            ModelShare(
                row.model,
                row.guarantee,
                row.limit,
                held[(team, key)],
                row.weight,
                tree.model_fair_share(team, key),
            )
            for key, row in mine.items()
        )
        for team, mine in rows.items()
    }


def _with_departments(teams: set[str], tree: FairShareTree) -> set[str]:
    out = set(teams)
    for team in teams:
        node = tree.nodes.get(team)
        if node is not None and node.parent_id is not None:
            out.add(node.parent_id)
    return out
