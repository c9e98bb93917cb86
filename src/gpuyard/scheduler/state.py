"""The cycle's working copy of the snapshot: assume, forget and simulate removals.

The input :class:`ClusterSnapshot` is never mutated. Each server becomes a
:class:`NodeState` with mutable free counters and per-device allocations; a placement is
*assumed* into it (kube-scheduler's ``AssumePod``) and can be *forgotten* again
(``ForgetPod``), and removing a running replica returns a function that puts it back
(Kueue's ``SimulateWorkloadUsageRemoval``), so gang rollback needs no copies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from gpuyard.domain.resources import GPU_MILLI, Resources
from gpuyard.scheduler.fairshare import QueueNode, within_guarantee
from gpuyard.scheduler.gpu_match import ModelKey, device_matches, model_key
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuAllocation,
    RunningReplica,
    ServerView,
    TeamQuota,
)
from gpuyard.scheduler.view_info import ViewCache, ViewInfo

ReplicaKey = tuple[str, int]


class NodeListener(Protocol):
    """Something that indexes nodes by their free capacity and must hear of changes."""

    def node_changed(self, node: NodeState) -> None: ...


def alloc_key(models: tuple[str, ...], alloc: list[int]) -> tuple[int, ...]:
    """``alloc`` (milli per device) as a key that equal device states share: sorted when
    every device in ``models`` is the same model, as given otherwise."""
    if len(models) < 2 or models.count(models[0]) == len(models):
        return tuple(sorted(alloc))
    return tuple(alloc)


def is_protected(replica: RunningReplica, now: float, min_runtime: float) -> bool:
    """Started less than ``min_runtime`` ago (one not started yet is not protected)."""
    return replica.started_at is not None and now - replica.started_at < min_runtime


def _gpus(milli: int) -> str:
    """Milli-GPUs as GPUs for a reason ("4", "0.5")."""
    return f"{round(milli / GPU_MILLI, 3):g}"


@dataclass(frozen=True, slots=True)
class ModelRoom:
    """Room left under a per-GPU-model limit (milli-GPUs), and whose limit it is."""

    room: int
    whose: str  # "team" or "department"
    model: str  # as the limit names it
    held: int
    limit: int

    @property
    def label(self) -> str:
        """ "team H100 limit 4/4 GPUs in use"."""
        return f"{self.whose} {self.model} limit {_gpus(self.held)}/{_gpus(self.limit)} GPUs in use"

    def exceeded(self, need: int) -> str:
        """The pending reason, in the quota check's words, for ``need`` more."""
        return (
            f"{self.whose} {self.model} limit exceeded: {_gpus(self.held)}/{_gpus(self.limit)} "
            f"GPUs in use, needs {_gpus(need)}"
        )


def _device_models(node: NodeState) -> dict[int, str]:
    """Each GPU's model on ``node``, by device index."""
    return {gpu.index: gpu.model for gpu in node.view.gpus}


def _milli_by_model(
    models: dict[int, str], alloc: GpuAllocation, keys: Iterable[ModelKey]
) -> Iterator[tuple[ModelKey, int]]:
    """(key, milli) for each slot of ``alloc`` on a device (``models``: index -> model)
    whose model matches one of ``keys``; a device matching several keys counts for each."""
    for index, milli in alloc:
        device = models.get(index)
        if device is None:
            continue
        for key in keys:
            if device_matches(key, device):
                yield key, milli


def _priority(replica: RunningReplica) -> int:
    return replica.priority


class NodeState:
    """One server during a cycle: free counters, device allocations, evictable replicas."""

    __slots__ = (
        "_alloc_key",
        "_evictable",
        "_mine",
        "_running",
        "_victims",
        "_whole",
        "dev_alloc",
        "dev_index",
        "dev_memory",
        "free_cpu",
        "free_gpu",
        "free_ram",
        "free_storage",
        "id",
        "info",
        "listeners",
        "name",
        "pos_of",
        "version",
        "view",
    )

    def __init__(
        self,
        view: ServerView,
        running: list[RunningReplica],
        evictable: list[RunningReplica],
        info: ViewInfo | None = None,
    ) -> None:
        # Everything derived from the view alone comes from its (cached) ViewInfo; only
        # the counters and allocations this cycle changes are copied.
        if info is None:
            info = ViewInfo(view)
        self.info = info
        self.view = view
        self.id = info.id
        self.name = info.name
        self.free_cpu = info.free_cpu
        self.free_ram = info.free_ram
        self.free_storage = info.free_storage
        self.free_gpu = info.free_gpu
        self.dev_index: tuple[int, ...] = info.dev_index
        self.dev_alloc: list[int] = list(info.dev_alloc)
        #: Free GPU memory (MiB) per device position, for shares that reserve some.
        self.dev_memory: list[int] = list(info.dev_memory)
        #: Shared with the ViewInfo: read only.
        self.pos_of: dict[int, int] = info.pos_of
        # ``running`` and ``evictable`` are indexed on first use (most nodes are never
        # looked at for preemption in a cycle); the lists are kept, not copied, so callers
        # must not change them afterwards (CycleState builds fresh ones per cycle).
        self._mine = running
        self._victims = evictable
        self._running: dict[ReplicaKey, RunningReplica] | None = None
        self._evictable: list[RunningReplica] | None = None
        self.listeners: list[NodeListener] = []
        self._whole: dict[ModelKey, int] = {}
        self._alloc_key: tuple[int, ...] | None = None
        #: Bumped on every change of the free counters or devices, so per-cycle caches of
        #: anything computed from them (scores) can tell a stale entry; 0 means the node is
        #: still as snapshotted (its ViewInfo's base values hold).
        self.version = 0

    @property
    def gpu_models(self) -> tuple[str, ...]:
        """The model of each device, in position order (built on first use)."""
        return self.info.gpu_models

    @property
    def alloc_key(self) -> tuple[int, ...]:
        """The device allocations as a cache key: sorted when all devices are one model
        (their order then does not matter), else in position order. Cached until a change."""
        found = self._alloc_key
        if found is None:
            found = self._alloc_key = alloc_key(self.gpu_models, self.dev_alloc)
        return found

    @property
    def running(self) -> dict[ReplicaKey, RunningReplica]:
        """Running replicas by (workload id, replica) (indexed on first use)."""
        found = self._running
        if found is None:
            mine = self._mine
            found = self._running = {(r.workload_id, r.replica): r for r in mine} if mine else {}
        return found

    @property
    def evictable(self) -> list[RunningReplica]:
        """Preemptible, unprotected running replicas, lowest priority first (sorted on
        first use; a stable sort, so equal priorities keep the snapshot's order)."""
        found = self._evictable
        if found is None:
            victims = self._victims
            found = self._evictable = sorted(victims, key=_priority) if victims else []
        return found

    def running_replicas(self) -> Iterable[RunningReplica]:
        """The values of :attr:`running` without indexing a node that holds at most one
        replica (no duplicate key can collapse there)."""
        if self._running is None and len(self._mine) <= 1:
            return self._mine
        return self.running.values()

    @property
    def lowest_evictable(self) -> int | None:
        found = self._evictable
        if found is not None:
            return found[0].priority if found else None
        victims = self._victims
        return min(r.priority for r in victims) if victims else None

    def matching(self, model: ModelKey) -> tuple[int, ...]:
        """Positions of the devices of ``model`` (all devices for None), cached."""
        return self.info.matching_positions(model)

    def devices_for(self, model: ModelKey, memory_mib: int) -> tuple[int, ...]:
        """Positions of the devices of ``model`` with at least ``memory_mib`` of GPU
        memory free (all of ``model``'s when no memory is asked for)."""
        positions = self.info.matching_positions(model)
        if not memory_mib:
            return positions
        memory = self.dev_memory
        return tuple(p for p in positions if memory[p] >= memory_mib)

    def whole_free(self, positions: tuple[int, ...]) -> int:
        alloc = self.dev_alloc
        return sum(1 for p in positions if alloc[p] == 0)

    def whole_free_of(self, model: ModelKey) -> int:
        """Entirely free devices of ``model`` (cached until the node changes)."""
        found = self._whole.get(model)
        if found is None:
            found = self.whole_free(self.matching(model))
            self._whole[model] = found
        return found

    def fits_aggregate(self, res: Resources) -> bool:
        return (
            res.cpu_milli <= self.free_cpu
            and res.ram_mib <= self.free_ram
            and res.storage_mib <= self.free_storage
            and res.gpu_milli <= self.free_gpu
        )

    # -- AssumePod / ForgetPod ---------------------------------------------------------
    def assume(self, res: Resources, alloc: GpuAllocation) -> None:
        """Take ``res`` and the device slots ``alloc`` for a tentative placement."""
        self._apply(res, alloc, -1)

    def forget(self, res: Resources, alloc: GpuAllocation) -> None:
        """Undo :meth:`assume` with the same arguments."""
        self._apply(res, alloc, 1)

    def _apply(self, res: Resources, alloc: GpuAllocation, sign: int) -> None:
        self.version += 1
        self.free_cpu += sign * res.cpu_milli
        self.free_ram += sign * res.ram_mib
        self.free_storage += sign * res.storage_mib
        self.free_gpu += sign * res.gpu_milli
        memory = res.gpu_memory_mib
        for index, milli in alloc:
            pos = self.pos_of.get(index)
            if pos is not None:
                self.dev_alloc[pos] -= sign * milli
                if memory:
                    self.dev_memory[pos] += sign * memory
        if alloc:
            self._whole.clear()
            self._alloc_key = None
        for listener in self.listeners:
            listener.node_changed(self)

    # -- SimulateWorkloadUsageRemoval --------------------------------------------------
    def remove_running(self, key: ReplicaKey) -> Callable[[], None]:
        """Release a running replica's usage; the returned function puts it back."""
        replica = self.running.pop(key)
        was_evictable = replica in self.evictable
        if was_evictable:
            self.evictable.remove(replica)
        self.forget(replica.resources, replica.gpu_allocation)

        def restore() -> None:
            self.assume(replica.resources, replica.gpu_allocation)
            self.running[key] = replica
            if was_evictable:
                self.evictable.append(replica)
                self.evictable.sort(key=_priority)

        return restore


def _free_per_model(node: NodeState) -> tuple[tuple[str, int], ...]:
    """The server's free GPU milli per device model (one pair for a one-model server)."""
    models = node.gpu_models
    alloc = node.dev_alloc
    if len(node.info.model_class) == 1:
        return ((models[0], len(alloc) * GPU_MILLI - sum(alloc)),)
    free: dict[str, int] = {}
    for position, used in enumerate(alloc):
        free[models[position]] = free.get(models[position], 0) + GPU_MILLI - used
    return tuple(sorted(free.items()))


class GpuTally:
    """Free GPU milli per device model over a cycle's servers, following every change of
    their devices (assume, forget, a replica removed or put back) as a :class:`NodeListener`.

    ``version`` counts the changes that moved GPU, so a reader can tell a stale figure
    without comparing dicts. Built by :meth:`CycleState.gpu_tally` (``fgd``'s model reserve
    reads it): the scarcity of a model must follow the cycle's own placements, or a cycle
    deciding hundreds of workloads keeps the pressure of its first decision throughout.
    """

    __slots__ = ("_counted", "free", "version")

    def __init__(self, nodes: Iterable[NodeState]) -> None:
        self.free: dict[str, int] = {}
        self.version = 0
        self._counted: dict[str, tuple[tuple[str, int], ...]] = {}
        free = self.free
        for node in nodes:
            if not node.dev_alloc:
                continue
            counted = _free_per_model(node)
            self._counted[node.id] = counted
            for model, milli in counted:
                free[model] = free.get(model, 0) + milli
            node.listeners.append(self)

    def node_changed(self, node: NodeState) -> None:
        counted = _free_per_model(node)
        old = self._counted[node.id]
        if counted == old:
            return  # CPU, RAM or storage only
        free = self.free
        for model, milli in old:
            free[model] -= milli
        for model, milli in counted:
            free[model] = free.get(model, 0) + milli
        self._counted[node.id] = counted
        self.version += 1


@dataclass(frozen=True, slots=True)
class Hold:
    """A server kept for one workload for the rest of the cycle.

    Workloads behind ``queue_pos`` in the queue whose priority is at most
    ``up_to_priority`` may not be placed on the server. ``kind`` is:

    - ``"reservation"``: a starving workload waits for the server; everything behind it in
      the queue is kept off (``up_to_priority`` = its own priority);
    - ``"preemption"``: victims were evicted there; work no more important than the most
      important victim is kept off (``up_to_priority`` = that victim's priority), so the
      freed room never goes to the victims' peers, while work that could have evicted
      those victims itself may use what the preemptor left over.
    """

    queue_pos: int
    workload_id: str
    kind: str
    up_to_priority: int


class CycleState:
    """Mutable working state of one cycle, built from (and never writing to) a snapshot."""

    def __init__(
        self,
        snapshot: ClusterSnapshot,
        now: float,
        min_runtime: float = 0.0,
        views: ViewCache | None = None,
    ) -> None:
        self.now = now
        #: What is derived from each view, kept across cycles by the caller's cache (a
        #: fresh one when none is given: nothing is reused beyond this cycle).
        self.views = ViewCache() if views is None else views
        # Only servers with replicas get a list; a replica on a server that is not in the
        # snapshot is ignored, as it always was.
        by_server: dict[str, list[RunningReplica]] = {}
        for replica in snapshot.running:
            bucket = by_server.get(replica.server_id)
            if bucket is None:
                by_server[replica.server_id] = [replica]
            else:
                bucket.append(replica)
        self.nodes: dict[str, NodeState] = {}
        #: Nodes by their lowest evictable priority, so preemption visits only servers
        #: with something a preemptor may evict, cheapest first.
        self.by_lowest_evictable: dict[int, dict[str, NodeState]] = {}
        infos = [self.views.info(server) for server in snapshot.servers]
        nodes = self.nodes
        no_replicas: list[RunningReplica] = []
        for info in infos:
            mine = by_server.get(info.id)
            if mine is None:
                nodes[info.id] = NodeState(info.view, no_replicas, no_replicas, info)
                continue
            victims = [r for r in mine if r.preemptible and not is_protected(r, now, min_runtime)]
            node = NodeState(info.view, mine, victims, info)
            nodes[info.id] = node
            self._index_victims(node, None)
        self.views.retain(infos)
        self.quotas: dict[str, TeamQuota] = dict(snapshot.quotas)
        self.team_used: dict[str, Resources] = {t: q.used for t, q in self.quotas.items()}
        #: The quota tree and what each of its teams holds now (borrowing and reclaim).
        self.teams: dict[str, QueueNode] = dict(snapshot.teams)
        self.tree_used: dict[str, Resources] = {t: Resources() for t in self.teams}
        #: Each department's teams (itself excluded), indexed once per cycle: the quota
        #: check sums a department's usage per request, and scanning every team for it
        #: was half of a cycle over a large backlog (bench S9).
        self.children: dict[str, list[str]] = {}
        for team, tree_node in self.teams.items():
            parent = tree_node.parent_id
            if parent is not None and parent != team:
                self.children.setdefault(parent, []).append(team)
        if self.teams:
            for replica in snapshot.running:
                if replica.team_id in self.tree_used:
                    team = replica.team_id
                    self.tree_used[team] = self.tree_used[team] + replica.resources
        #: Per-GPU-model guarantees: each guaranteed model's key, each team's guarantee
        #: per key, and what every team holds on devices of each such model (milli-GPUs).
        self.guaranteed_models: dict[str, ModelKey] = {}
        self.model_guarantee: dict[tuple[str, ModelKey], int] = {}
        for team, queue_node in self.teams.items():
            for model, milli in queue_node.gpu_models:
                key = model_key(model)
                if key is None or milli <= 0:
                    continue
                self.guaranteed_models.setdefault(model, key)
                self.model_guarantee[(team, key)] = milli
        #: Per-GPU-model limits: each limited (team, key), every limited key, and each
        #: limit's model as its team wrote it (for reasons). Empty when no team has one:
        #: nothing else below costs anything then.
        self.model_limits: dict[tuple[str, ModelKey], int] = {}
        self.limit_names: dict[ModelKey, str] = {}
        self._limit_spelling: dict[tuple[str, ModelKey], str] = {}
        for team, queue_node in self.teams.items():
            for model, milli in queue_node.gpu_model_limits:
                key = model_key(model)
                if key is None or milli < 0:
                    continue
                self.limit_names.setdefault(key, model)
                self.model_limits[(team, key)] = milli
                self._limit_spelling[(team, key)] = model
        #: Every model whose holdings are counted (guaranteed or limited).
        self.tracked_models: tuple[ModelKey, ...] = tuple(
            set(self.guaranteed_models.values()) | set(self.limit_names)
        )
        #: (server's model class, request's model) -> the limited models its devices are.
        self._limited_on: dict[tuple[frozenset[str], ModelKey], tuple[ModelKey, ...]] = {}
        self.model_used: dict[tuple[str, ModelKey], int] = {}
        if self.tracked_models:
            for replica in snapshot.running:
                held = nodes.get(replica.server_id)
                if held is not None:
                    self._charge_models(held, replica.team_id, replica.gpu_allocation, 1)
        self.holds: dict[str, Hold] = {}
        #: Workloads with a replica evicted in this cycle: none of them is placed again in
        #: this cycle, so victims never flow back into capacity freed for a preemptor.
        self.evicted_workloads: set[str] = set()
        #: Bumped whenever capacity is freed (an eviction or a forget); failure caches key
        #: on it, because only a release can turn "does not fit" into "fits" in a cycle.
        self.epoch = 0
        self._gpu_tally: GpuTally | None = None

    def gpu_tally(self) -> GpuTally:
        """Free GPU milli per device model over the cycle's servers, kept current through
        every later change (counted on first use: a cycle that never asks pays nothing)."""
        tally = self._gpu_tally
        if tally is None:
            tally = self._gpu_tally = GpuTally(self.nodes.values())
        return tally

    # -- changes, each keeping team usage, indexes and the release epoch in step --------
    def assume(
        self, node: NodeState, team_id: str | None, res: Resources, alloc: GpuAllocation
    ) -> None:
        """Place one replica tentatively (AssumePod)."""
        node.assume(res, alloc)
        self.charge_team(team_id, res)
        self._charge_models(node, team_id, alloc, 1)

    def forget(
        self, node: NodeState, team_id: str | None, res: Resources, alloc: GpuAllocation
    ) -> None:
        """Take back an assumed replica (ForgetPod); frees capacity, so bump the epoch."""
        node.forget(res, alloc)
        self.charge_team(team_id, res, -1)
        self._charge_models(node, team_id, alloc, -1)
        self.epoch += 1

    def evict(self, node: NodeState, key: ReplicaKey) -> RunningReplica:
        """Remove a running replica for the rest of the cycle (it is a victim)."""
        replica = self.finish(node, key)
        self.evicted_workloads.add(replica.workload_id)
        return replica

    def finish(self, node: NodeState, key: ReplicaKey) -> RunningReplica:
        """A running replica ends (start estimates play time forward): its room and its
        team's quota come back. Unlike :meth:`evict`, its workload is not kept out."""
        replica = node.running[key]
        before = node.lowest_evictable
        node.remove_running(key)
        self._index_victims(node, before)
        self.charge_team(replica.team_id, replica.resources, -1)
        self._charge_models(node, replica.team_id, replica.gpu_allocation, -1)
        self.epoch += 1
        return replica

    def charge_team(self, team_id: str | None, res: Resources, sign: int = 1) -> None:
        """Count ``res`` against a team's quota (sign -1 releases it)."""
        if team_id is None:
            return
        delta = res if sign > 0 else Resources() - res
        if team_id in self.team_used:
            self.team_used[team_id] = self.team_used[team_id] + delta
        if team_id in self.tree_used:
            self.tree_used[team_id] = self.tree_used[team_id] + delta

    def _charge_models(
        self, node: NodeState, team_id: str | None, alloc: GpuAllocation, sign: int
    ) -> None:
        """Count ``alloc`` (device, milli) against each tracked model its devices are."""
        if team_id is None or not self.tracked_models or not alloc:
            return
        for key, milli in _milli_by_model(_device_models(node), alloc, self.tracked_models):
            slot = (team_id, key)
            self.model_used[slot] = self.model_used.get(slot, 0) + sign * milli

    def model_taken(
        self, server_id: str, replicas: Iterable[RunningReplica]
    ) -> dict[tuple[str, ModelKey], int]:
        """Milli-GPUs of each tracked model that evicting ``replicas`` (all on
        ``server_id``) takes from each team."""
        taken: dict[tuple[str, ModelKey], int] = {}
        node = self.nodes.get(server_id)
        if node is None or not self.tracked_models:
            return taken
        models = _device_models(node)
        for replica in replicas:
            if replica.team_id is None:
                continue
            for key, milli in _milli_by_model(models, replica.gpu_allocation, self.tracked_models):
                slot = (replica.team_id, key)
                taken[slot] = taken.get(slot, 0) + milli
        return taken

    # -- per-GPU-model limits (docs/architecture.md, "Per-GPU-model limits") -----------
    def limited_models_on(self, node: NodeState, requested: ModelKey) -> tuple[ModelKey, ...]:
        """The limited models that a replica asking for ``requested`` could be charged
        for on ``node``: those of its devices that the request may use (cached per
        server model class)."""
        if not self.model_limits:
            return ()
        slot = (node.info.model_class, requested)
        found = self._limited_on.get(slot)
        if found is None:
            usable = [m for m in node.info.model_class if device_matches(requested, m)]
            found = tuple(
                key
                for key in self.limit_names
                if any(device_matches(key, model) for model in usable)
            )
            self._limited_on[slot] = found
        return found

    def model_limit_blocks(
        self, team_id: str | None, node: NodeState, requested: ModelKey, need: int
    ) -> ModelRoom | None:
        """The per-model limit that keeps one more replica (``need`` milli-GPUs of a
        request for ``requested``) of ``team_id`` off ``node``, or None: any limited model
        among the devices it may use there without ``need`` left (conservative on a server
        of several models)."""
        if team_id is None or need <= 0 or not self.model_limits:
            return None
        for key in self.limited_models_on(node, requested):
            room = self.model_room(team_id, key)
            if room is not None and room.room < need:
                return room
        return None

    def _limit_holders(self, team_id: str) -> list[tuple[str, list[str]]]:
        """The tree nodes whose limits cover ``team_id``'s work, each with the teams whose
        holdings count against it: the team itself (a department with its teams), then its
        department with its teams."""
        out = [(team_id, [team_id, *self.children.get(team_id, ())])]
        queue_node = self.teams.get(team_id)
        parent = queue_node.parent_id if queue_node is not None else None
        if parent is not None and parent in self.teams and parent != team_id:
            out.append((parent, [parent, *self.children.get(parent, ())]))
        return out

    def model_room(self, team_id: str | None, key: ModelKey) -> ModelRoom | None:
        """What of model ``key`` ``team_id``'s work may still take under the tightest
        per-model limit that covers it (its own or its department's), or None when none
        does."""
        if team_id is None or not self.model_limits:
            return None
        best: ModelRoom | None = None
        for holder, members in self._limit_holders(team_id):
            room = self._holder_room(team_id, holder, members, key, {})
            if room is not None and (best is None or room.room < best.room):
                best = room
        return best

    def _holder_room(
        self,
        team_id: str,
        holder: str,
        members: list[str],
        key: ModelKey,
        taken: dict[tuple[str, ModelKey], int],
    ) -> ModelRoom | None:
        """Room under ``holder``'s limit of ``key`` (None without one) for ``team_id``'s
        work, ``members``' holdings counted less what ``taken`` frees of them."""
        limit = self.model_limits.get((holder, key))
        if limit is None:
            return None
        held = sum(self.model_used.get((m, key), 0) - taken.get((m, key), 0) for m in members)
        whose = "team" if holder == team_id else "department"
        return ModelRoom(limit - held, whose, self._limit_spelling[(holder, key)], held, limit)

    def model_limit_problem(
        self,
        team_id: str | None,
        parts: Iterable[tuple[NodeState, Iterable[GpuAllocation], Iterable[RunningReplica]]],
    ) -> str | None:
        """Why placing, on each node of ``parts``, its slots for ``team_id`` (after
        evicting its victims there) would take the team or its department past a
        per-model limit, or None when it would not."""
        if team_id is None or not self.model_limits:
            return None
        added: dict[ModelKey, int] = {}
        taken: dict[tuple[str, ModelKey], int] = {}
        for node, allocations, freed in parts:
            models = _device_models(node)
            for alloc in allocations:
                for key, milli in _milli_by_model(models, alloc, self.limit_names):
                    added[key] = added.get(key, 0) + milli
            for slot, milli in self.model_taken(node.id, freed).items():
                taken[slot] = taken.get(slot, 0) + milli
        for holder, members in self._limit_holders(team_id):
            for key, milli in added.items():
                room = self._holder_room(team_id, holder, members, key, taken)
                if room is not None and room.room < milli:
                    return room.exceeded(milli)
        return None

    def model_reclaim(self, team_id: str | None, key: ModelKey, need: Resources) -> ModelKey:
        """``key`` when its per-model guarantee lets ``team_id`` reclaim for ``need``
        pinned to it (one model: a request naming alternatives is not pinned), else None:
        the team stays within its guarantee of that model holding ``need`` more of it."""
        if team_id is None or need.gpu_milli <= 0 or not self.model_guarantee:
            return None
        if key is None or len(key) != 1:
            return None
        guarantee = self.model_guarantee.get((team_id, key), 0)
        if guarantee <= 0:
            return None
        held = self.model_used.get((team_id, key), 0)
        return key if held + need.gpu_milli <= guarantee else None

    def model_borrowed(self, team_id: str | None, key: ModelKey) -> int:
        """Milli-GPUs of model ``key`` that ``team_id`` holds above its guarantee of it."""
        if team_id is None or key is None:
            return 0
        held = self.model_used.get((team_id, key), 0)
        return max(0, held - self.model_guarantee.get((team_id, key), 0))

    def may_reclaim(self, team_id: str | None, need: Resources) -> bool:
        """Whether ``team_id`` stays within its guarantee holding ``need`` more: then it may
        take back what borrowers run on its lent capacity (scheduler/fairshare.py)."""
        if team_id is None or team_id not in self.teams:
            return False
        return within_guarantee(self.tree_used[team_id], need, self.teams[team_id].guarantee)

    def borrowed(self, team_id: str | None) -> Resources:
        """What ``team_id`` holds above its guarantee, per dimension (zero outside the tree)."""
        if team_id is None or team_id not in self.teams:
            return Resources()
        used, guarantee = self.tree_used[team_id], self.teams[team_id].guarantee
        return Resources(
            max(0, used.cpu_milli - guarantee.cpu_milli),
            max(0, used.ram_mib - guarantee.ram_mib),
            max(0, used.storage_mib - guarantee.storage_mib),
            max(0, used.gpu_milli - guarantee.gpu_milli),
        )

    def blocked_by_hold(self, node_id: str, queue_pos: int, priority: int) -> Hold | None:
        """The hold that keeps a workload (queue position, priority) off ``node_id``."""
        hold = self.holds.get(node_id)
        if hold is not None and hold.queue_pos < queue_pos and priority <= hold.up_to_priority:
            return hold
        return None

    def hold(self, node_id: str, hold: Hold) -> None:
        """Add a hold; a server held twice keeps the earlier holder and the wider block."""
        old = self.holds.get(node_id)
        if old is not None:
            hold = Hold(
                min(old.queue_pos, hold.queue_pos),
                old.workload_id if old.queue_pos <= hold.queue_pos else hold.workload_id,
                old.kind if old.queue_pos <= hold.queue_pos else hold.kind,
                max(old.up_to_priority, hold.up_to_priority),
            )
        self.holds[node_id] = hold

    def _index_victims(self, node: NodeState, before: int | None) -> None:
        after = node.lowest_evictable
        if before == after:
            return
        if before is not None:
            bucket = self.by_lowest_evictable[before]
            del bucket[node.id]
            if not bucket:
                del self.by_lowest_evictable[before]
        if after is not None:
            self.by_lowest_evictable.setdefault(after, {})[node.id] = node


_t: type[NodeListener] = GpuTally
