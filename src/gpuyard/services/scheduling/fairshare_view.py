"""The fair-share view: each team's guarantee, usage, borrowing and fair share over the
quota tree (scheduler/fairshare.py), from the scheduler's own snapshot."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission, Scope, scope_of
from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.runtimes.registry import runs_containers
from gpuyard.scheduler.fairshare import FairShareTree, TeamShare
from gpuyard.scheduler.gpu_match import device_matches, model_key
from gpuyard.scheduler.snapshot import ClusterSnapshot
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.quota_tree import queue_node
from gpuyard.store import team_usage
from gpuyard.store import teams as team_store


@dataclass(frozen=True)
class FairShareEntry:
    """One team of the view, with its name and the fleet capacity shares are out of."""

    name: str
    share: TeamShare
    #: Per-GPU-model guarantees: (model, guaranteed milli-GPUs, milli-GPUs the team's own
    #: workloads hold on devices of that model).
    gpu_models: tuple[tuple[str, int, int], ...] = ()
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
    tree = FairShareTree(nodes, capacity, half_life)
    names = {t.id: t.name for t in teams}
    limits = {node.team_id: node.limit for node in nodes}
    visible = set(names) if mine is None else _with_departments(mine, tree)
    models = _model_usage(state.snapshot, {t.id: t.guarantee_gpu_models for t in teams})
    entries = [
        FairShareEntry(names[s.team_id], s, models.get(s.team_id, ()), limits[s.team_id])
        for s in tree.shares(names.__getitem__)
        if s.team_id in visible
    ]
    return capacity, entries


def _model_usage(
    snapshot: ClusterSnapshot, guarantees: dict[str, tuple[tuple[str, int], ...]]
) -> dict[str, tuple[tuple[str, int, int], ...]]:
    """Each team with per-model guarantees: (model, guarantee, held on devices of it)."""
    wanted = {team: g for team, g in guarantees.items() if g}
    if not wanted:
        return {}
    devices = {
        (server.id, gpu.index): gpu.model for server in snapshot.servers for gpu in server.gpus
    }
    held: dict[tuple[str, str], int] = defaultdict(int)
    for replica in snapshot.running:
        team = replica.team_id
        if team not in wanted:
            continue
        for model, _ in wanted[team]:
            key = model_key(model)
            for index, milli in replica.gpu_allocation:
                device = devices.get((replica.server_id, index))
                if device is not None and device_matches(key, device):
                    held[(team, model)] += milli
    return {
        team: tuple((model, milli, held[(team, model)]) for model, milli in g)
        for team, g in wanted.items()
    }


def _with_departments(teams: set[str], tree: FairShareTree) -> set[str]:
    out = set(teams)
    for team in teams:
        node = tree.nodes.get(team)
        if node is not None and node.parent_id is not None:
            out.add(node.parent_id)
    return out
