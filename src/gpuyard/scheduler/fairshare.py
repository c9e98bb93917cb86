"""Hierarchical quotas with borrowing and reclaim, and dominant-resource fair share (DRF).

Pure: the tree of teams (two levels at most, department -> team), what each node uses and
wants, and the capacity of the fleet in; fair shares, borrowing and the queue's key out.
Reclaim itself is a preemption (``preemption.find_preemption`` with ``CycleState``'s
``may_reclaim``/``borrowed``). Nothing here touches the store or the clock.

The model, per dimension (cpu, ram, storage, gpu), as KAI and Kueue cohorts do it:

* every node has a *guarantee* (deserved quota), an optional *limit* and an over-quota
  *weight*, which may differ per dimension (KAI's per-resource ``overQuotaWeight``);
* a level's capacity (the fleet at the top, a department's fair share below it) is divided
  among its children in two rounds: first each child gets ``min(guarantee, demand, limit)``
  (scaled down pro rata if the guarantees are over-committed), then what is left is
  water-filled by weight among children whose demand is not met, never past a limit;
* a team *borrows* what it uses above its guarantee (it runs on capacity others lend);
  a team that stays within its guarantee with a pending workload *reclaims*: replicas of
  borrowing teams become victims, never more than a team borrows, fewest first.

Dominant shares (DRF) are ``max over dimensions of used / capacity / weight`` (shown by
the view); the queue, among equal priorities, serves teams under their guarantee first,
then by ``used / fair share`` over the contended dimensions, the department first, then
the team (:meth:`FairShareTree.order_key`).

Per GPU model: a node may weigh its claim on one model's idle GPUs apart from its GPU
weight (``gpu_model_weights``). Each model some node weighs is then divided as a
dimension of its own (its devices' capacity; each node's guarantee and limit of the model,
what it holds of the model and what its work pinned to exactly that model waits for; the
weight of the model, else the node's GPU weight), and work pinned to that model is queued
by ``held / fair share`` of the model in place of the GPU dimension. Work pinned to several
models, or to none, competes in the GPU dimension alone.

With a half-life (``GPUYARD_FAIRSHARE_HALF_LIFE_S``), each node's ``history`` (its
decayed past usage, ``scheduler/usage_decay.py``) multiplies those ratios by Slurm's
``2^(U/S)``: see that module for the choice. Without one the order is exactly DRF's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from gpuyard.domain.resources import Resources
from gpuyard.scheduler import usage_decay
from gpuyard.scheduler.gpu_match import ModelKey, model_key

#: The dimensions quotas are kept over, in :class:`Resources` field order.
DIMENSIONS: tuple[str, ...] = ("cpu_milli", "ram_mib", "storage_mib", "gpu_milli")

#: The deepest tree allowed: a department and its teams.
MAX_DEPTH = 2

_EPSILON = 1e-9

Vector = tuple[float, float, float, float]

#: :meth:`FairShareTree.order_key`: (not under its guarantee, the department's penalised
#: ratio, the team's penalised ratio, the department's and the team's ``U / S``).
OrderKey = tuple[int, float, float, float, float]


def _vec(res: Resources) -> Vector:
    return (
        float(res.cpu_milli),
        float(res.ram_mib),
        float(res.storage_mib),
        float(res.gpu_milli),
    )


_ZERO: Vector = (0.0, 0.0, 0.0, 0.0)


def _add(a: Vector, b: Vector) -> Vector:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


@dataclass(frozen=True, slots=True)
class QueueNode:
    """One node of the quota tree (a department or a team).

    ``limit`` dimensions that are None are unlimited; ``used`` is what the node's own
    workloads hold now and ``pending`` what its own waiting workloads ask for (a
    department's totals include its teams' automatically).
    """

    team_id: str
    parent_id: str | None = None
    guarantee: Resources = field(default_factory=Resources)
    limit: tuple[int | None, int | None, int | None, int | None] = (None, None, None, None)
    weight: float = 1.0
    used: Resources = field(default_factory=Resources)
    pending: Resources = field(default_factory=Resources)
    #: Decayed past usage of the node's own workloads, in resource-seconds (internal
    #: units; ``scheduler/usage_decay.py``); a department's total includes its teams'.
    history: Vector = (0.0, 0.0, 0.0, 0.0)
    #: Per-GPU-model guarantees, (model, milli-GPUs): a part of ``guarantee.gpu_milli``
    #: reclaimed for the node's own work pinned to that model (``CycleState.model_reclaim``).
    gpu_models: tuple[tuple[str, int], ...] = ()
    #: Per-GPU-model limits, (model, milli-GPUs): at most this much of each model held at
    #: once by the node's work (a department's with its teams'; ``CycleState.model_limit``).
    gpu_model_limits: tuple[tuple[str, int], ...] = ()
    #: Over-quota weights per dimension (cpu, ram, storage, gpu); None: ``weight`` in
    #: every dimension.
    weights: Vector | None = None
    #: Per-GPU-model over-quota weights, (model, weight): the node's claim on that
    #: model's idle GPUs among its siblings (a model not named: its GPU weight).
    gpu_model_weights: tuple[tuple[str, float], ...] = ()

    def dimension_weights(self) -> Vector:
        """The over-quota weight of each dimension (cpu, ram, storage, gpu)."""
        if self.weights is not None:
            return self.weights
        return (self.weight, self.weight, self.weight, self.weight)


class TreeError(ValueError):
    """The quota tree is not valid: an unknown parent, a cycle or too deep."""

    def __init__(self, team_id: str, message: str) -> None:
        super().__init__(message)
        self.team_id = team_id


def validate_tree(parents: Mapping[str, str | None]) -> None:
    """Raise :class:`TreeError` unless ``parents`` (team -> parent) is a forest of depth
    at most :data:`MAX_DEPTH` whose parents all exist (no cycles, no self-parent)."""
    for team in sorted(parents):
        depth = 1
        seen = {team}
        parent = parents[team]
        while parent is not None:
            if parent not in parents:
                raise TreeError(team, f"parent {parent!r} of team {team!r} does not exist")
            if parent in seen:
                raise TreeError(team, f"team {team!r} is its own ancestor (a cycle)")
            seen.add(parent)
            depth += 1
            if depth > MAX_DEPTH:
                raise TreeError(
                    team, f"team {team!r} would be {depth} levels deep; at most {MAX_DEPTH}"
                )
            parent = parents[parent]


def repair_tree(nodes: Iterable[QueueNode]) -> tuple[list[QueueNode], list[str]]:
    """``nodes`` with every parent link that breaks the tree cut (the team goes to the top
    level), and the teams cut. The service validates each change, but two concurrent
    changes may still form a cycle or a third level (docs/concurrency.md row 36); readers
    repair instead of failing a scheduling cycle."""
    out = {n.team_id: n for n in nodes}
    cut: list[str] = []
    while True:
        try:
            validate_tree({t: n.parent_id for t, n in out.items()})
        except TreeError as err:
            out[err.team_id] = replace(out[err.team_id], parent_id=None)
            cut.append(err.team_id)
            continue
        return list(out.values()), cut


@dataclass(frozen=True, slots=True)
class TeamShare:
    """What the fair-share view shows of one node (all vectors in internal units)."""

    team_id: str
    parent_id: str | None
    weight: float
    guarantee: Vector
    used: Vector
    demand: Vector
    fair_share: Vector
    borrowed: Vector
    #: ``max over dimensions of used / capacity / weight``.
    dominant_share: float
    #: Decayed past usage (resource-seconds; zero without a half-life).
    history: Vector = (0.0, 0.0, 0.0, 0.0)
    #: ``2^(U/S)``, what the queue multiplies the node's ratios by (1 without history).
    usage_penalty: float = 1.0
    #: The over-quota weight of each dimension (cpu, ram, storage, gpu).
    weights: Vector = (1.0, 1.0, 1.0, 1.0)

    @property
    def under_guarantee(self) -> bool:
        """Whether the node uses less than its guarantee in every dimension it has one."""
        return all(
            u < g - _EPSILON or g <= 0 for u, g in zip(self.used, self.guarantee, strict=True)
        ) and any(g > 0 for g in self.guarantee)


@dataclass(frozen=True, slots=True)
class _Claim:
    key: str
    guarantee: float
    cap: float  # min(demand, limit)
    weight: float


def divide(capacity: float, claims: Sequence[_Claim]) -> dict[str, float]:
    """Divide one dimension's ``capacity`` among ``claims``: guarantees first (pro rata to
    them when over-committed), then the rest water-filled by weight, never past a cap."""
    alloc = {c.key: min(c.guarantee, c.cap) for c in claims}
    wanted = sum(alloc.values())
    if wanted > capacity + _EPSILON:
        factor = capacity / wanted if wanted > 0 else 0.0
        return {k: v * factor for k, v in alloc.items()}
    left = capacity - wanted
    hungry = [c for c in claims if alloc[c.key] < c.cap - _EPSILON and c.weight > 0]
    while left > _EPSILON and hungry:
        total_weight = sum(c.weight for c in hungry)
        # The largest step every hungry claim can take before one of them is full.
        step = min(left / total_weight, *((c.cap - alloc[c.key]) / c.weight for c in hungry))
        for c in hungry:
            alloc[c.key] += step * c.weight
        left -= step * total_weight
        hungry = [c for c in hungry if alloc[c.key] < c.cap - _EPSILON]
    return alloc


class FairShareTree:
    """Fair shares over a tree of :class:`QueueNode` for a fleet ``capacity`` (links that
    break the tree are cut first: :func:`repair_tree`, the teams cut in ``cut``).

    ``half_life_s``: the decay the nodes' ``history`` was kept with; None (the default)
    ignores history, and the order is DRF's alone."""

    def __init__(
        self,
        nodes: Iterable[QueueNode],
        capacity: Resources,
        half_life_s: float | None = None,
        model_held: Mapping[tuple[str, ModelKey], float] | None = None,
        model_capacity: Mapping[ModelKey, float] | None = None,
        model_pending: Mapping[tuple[str, ModelKey], float] | None = None,
    ) -> None:
        repaired, self.cut = repair_tree(nodes)
        self.nodes: dict[str, QueueNode] = {n.team_id: n for n in repaired}
        self.capacity: Vector = _vec(capacity)
        self.half_life_s = half_life_s
        self._exponents: dict[str, float] = {}
        self.children: dict[str | None, list[str]] = {}
        for team in sorted(self.nodes):
            self.children.setdefault(self.nodes[team].parent_id, []).append(team)
        self.used: dict[str, Vector] = {}
        self.demand: dict[str, Vector] = {}
        self.history: dict[str, Vector] = {}
        for team in self.nodes:
            self._totals(team)
        self.fair: dict[str, Vector] = {}
        self._divide_level(None, self.capacity)
        #: Per-GPU-model guarantees, (team, model key) -> milli-GPUs, and what each team's
        #: own workloads hold of each such model (``model_held``, counted by the caller
        #: from the devices' models): the queue's under-guarantee rule for pinned work.
        self.model_guarantee: dict[tuple[str, ModelKey], float] = {}
        for team, queue_node in self.nodes.items():
            for model, milli in queue_node.gpu_models:
                key = model_key(model)
                if key is not None and milli > 0:
                    self.model_guarantee[(team, key)] = float(milli)
        self.model_held: Mapping[tuple[str, ModelKey], float] = model_held or {}
        #: Per-GPU-model fair shares, (node, model key) -> milli-GPUs, for every model some
        #: node weighs (``gpu_model_weights``): ``model_capacity`` (the model's devices,
        #: milli-GPUs) divided as a dimension of its own; see :meth:`_divide_models`.
        self.model_fair: dict[tuple[str, ModelKey], float] = {}
        self.model_demand: dict[tuple[str, ModelKey], float] = {}
        self.model_used: dict[tuple[str, ModelKey], float] = {}
        self.weighted_models = weighted_models(self.nodes.values())
        if self.weighted_models:
            self._divide_models(model_capacity or {}, model_pending or {})

    def _totals(self, team: str) -> tuple[Vector, Vector]:
        if team in self.used:
            return self.used[team], self.demand[team]
        node = self.nodes[team]
        used = _vec(node.used)
        demand = _add(used, _vec(node.pending))
        history = node.history
        for child in self.children.get(team, []):
            child_used, child_demand = self._totals(child)
            used, demand = _add(used, child_used), _add(demand, child_demand)
            history = _add(history, self.history[child])
        self.used[team], self.demand[team] = used, demand
        self.history[team] = history
        return used, demand

    def _cap(self, team: str, dim: int) -> float:
        limit = self.nodes[team].limit[dim]
        demand = self.demand[team][dim]
        return demand if limit is None else min(demand, float(limit))

    def _divide_level(self, parent: str | None, capacity: Vector) -> None:
        kids = self.children.get(parent, [])
        if not kids:
            return
        per_dim: list[dict[str, float]] = []
        for dim in range(len(DIMENSIONS)):
            claims = [
                _Claim(
                    k,
                    _vec(self.nodes[k].guarantee)[dim],
                    self._cap(k, dim),
                    self.nodes[k].dimension_weights()[dim],
                )
                for k in kids
            ]
            if parent is not None:
                # The department's own workloads compete as a weight-1 child without
                # a guarantee.
                own = self.nodes[parent]
                own_demand = _vec(own.used)[dim] + _vec(own.pending)[dim]
                claims.append(_Claim("\0own", 0.0, own_demand, 1.0))
            per_dim.append(divide(capacity[dim], claims))
        for k in kids:
            share: Vector = (per_dim[0][k], per_dim[1][k], per_dim[2][k], per_dim[3][k])
            self.fair[k] = share
            self._divide_level(k, share)

    def _model_weight(self, team: str, key: ModelKey) -> float:
        node = self.nodes[team]
        weight = _by_model(node.gpu_model_weights).get(key)
        return float(weight) if weight is not None else node.dimension_weights()[3]

    def _model_totals(
        self, team: str, key: ModelKey, pending: Mapping[tuple[str, ModelKey], float]
    ) -> tuple[float, float]:
        """(held, demand) of ``key`` by ``team``'s subtree, kept in ``model_used`` and
        ``model_demand``."""
        slot = (team, key)
        if slot in self.model_used:
            return self.model_used[slot], self.model_demand[slot]
        used = self.model_held.get(slot, 0.0)
        demand = used + pending.get(slot, 0.0)
        for child in self.children.get(team, []):
            child_used, child_demand = self._model_totals(child, key, pending)
            used, demand = used + child_used, demand + child_demand
        self.model_used[slot], self.model_demand[slot] = used, demand
        return used, demand

    def _divide_models(
        self, capacity: Mapping[ModelKey, float], pending: Mapping[tuple[str, ModelKey], float]
    ) -> None:
        """Divide each weighted model's devices as the dimensions are divided: guarantees
        of the model first, then the rest water-filled by each node's weight of the
        model, never past its limit of the model or its demand for it (held plus its work
        pinned to exactly that model)."""
        for key in self.weighted_models:
            for team in self.nodes:
                self._model_totals(team, key, pending)

            def level(parent: str | None, room: float, key: ModelKey = key) -> None:
                kids = self.children.get(parent, [])
                if not kids:
                    return
                claims = []
                for k in kids:
                    demand = self.model_demand[(k, key)]
                    limit = _by_model(self.nodes[k].gpu_model_limits).get(key)
                    cap = demand if limit is None else min(demand, limit)
                    guarantee = self.model_guarantee.get((k, key), 0.0)
                    claims.append(_Claim(k, guarantee, cap, self._model_weight(k, key)))
                if parent is not None:
                    own = self.model_held.get((parent, key), 0.0) + pending.get((parent, key), 0.0)
                    claims.append(_Claim("\0own", 0.0, own, 1.0))
                for k, share in divide(room, claims).items():
                    if k != "\0own":
                        self.model_fair[(k, key)] = share
                        level(k, share)

            level(None, float(capacity.get(key, 0.0)))

    def model_fair_share(self, team: str, key: ModelKey) -> float | None:
        """``team``'s fair share of a weighted model, in milli-GPUs (None: no node weighs
        the model)."""
        if key not in self.weighted_models:
            return None
        return self.model_fair.get((team, key), 0.0)

    def _model_ratio(self, team: str, key: ModelKey, added: float) -> float:
        """``held / fair share`` of a weighted model for ``team``'s subtree, ``added``
        counted as held; 0 when all its demand for the model fits in its share."""
        used = self.model_used.get((team, key), 0.0) + added
        share = self.model_fair.get((team, key), 0.0)
        if used <= 0 or share >= self.model_demand.get((team, key), 0.0) - _EPSILON:
            return 0.0
        return used / share if share > _EPSILON else math.inf

    def share(self, team: str) -> TeamShare:
        """The fair-share view of ``team``."""
        node = self.nodes[team]
        guarantee = _vec(node.guarantee)
        used = self.used[team]
        borrowed: Vector = (
            max(0.0, used[0] - guarantee[0]),
            max(0.0, used[1] - guarantee[1]),
            max(0.0, used[2] - guarantee[2]),
            max(0.0, used[3] - guarantee[3]),
        )
        return TeamShare(
            team_id=team,
            parent_id=node.parent_id,
            weight=node.weight,
            guarantee=guarantee,
            used=used,
            demand=self.demand[team],
            fair_share=self.fair.get(team, _ZERO),
            borrowed=borrowed,
            dominant_share=self.dominant_share(team),
            history=self.history[team] if self.half_life_s else _ZERO,
            usage_penalty=self.usage_penalty(team),
            weights=node.dimension_weights(),
        )

    def shares(self, name: Callable[[str], str] = str) -> list[TeamShare]:
        """Every node's view: departments first, each followed by its teams, each level
        sorted by ``name`` (team id by default)."""
        out: list[TeamShare] = []
        for top in sorted(self.children.get(None, []), key=name):
            out.append(self.share(top))
            out.extend(self.share(k) for k in sorted(self.children.get(top, []), key=name))
        return out

    def dominant_share(self, team: str) -> float:
        """DRF: the largest ``used / capacity / weight`` of ``team`` (its subtree) over the
        dimensions (infinite where it uses a dimension it weighs 0)."""
        share = 0.0
        weights = self.nodes[team].dimension_weights()
        for u, c, w in zip(self.used[team], self.capacity, weights, strict=True):
            if c <= 0 or u <= 0:
                continue
            share = max(share, u / c / w if w > 0 else math.inf)
        return share

    def normalized_share(self, team: str) -> float:
        """Slurm's normalised share ``S``: the node's weight over the sum of its siblings'
        (itself included; 0 when they all weigh 0)."""
        siblings = self.children.get(self.nodes[team].parent_id, [])
        total = sum(self.nodes[k].weight for k in siblings)
        return self.nodes[team].weight / total if total > 0 else 0.0

    def decayed_share(self, team: str) -> float:
        """``U``: the dominant share of the node's decayed past usage (0 without a
        half-life; :func:`usage_decay.decayed_share`)."""
        if not self.half_life_s:
            return 0.0
        return usage_decay.decayed_share(self.history[team], self.capacity, self.half_life_s)

    def usage_exponent(self, team: str) -> float:
        """``U / S`` (capped; 0 without a half-life or history). Fixed for the tree's
        life (history is read once per cycle), so kept once computed."""
        if not self.half_life_s:
            return 0.0
        exponent = self._exponents.get(team)
        if exponent is None:
            exponent = usage_decay.usage_exponent(
                self.decayed_share(team), self.normalized_share(team)
            )
            self._exponents[team] = exponent
        return exponent

    def usage_penalty(self, team: str) -> float:
        """``2^(U/S)``: 1 without a half-life or history, larger the more the node used
        above its share lately."""
        return math.pow(2.0, self.usage_exponent(team))

    def fair_share_ratio(
        self, team: str, added: Vector = _ZERO, model: ModelKey = None, model_added: float = 0.0
    ) -> float:
        """DRF against entitlement: the largest ``used / fair share`` over the contended
        dimensions, those where the node wants more than its share (infinite when it
        uses a dimension it has no share of), with ``added`` counted as used. With
        unbounded demand and no guarantees this is the weighted dominant share times the
        total weight.

        ``model``: for work pinned to a weighted model, that model's ratio
        (:meth:`_model_ratio`, ``model_added`` counted as held) replaces the GPU
        dimension's."""
        ratio = 0.0
        fair = self.fair.get(team, _ZERO)
        used = _add(self.used[team], added)
        dims = 4
        if model is not None and model in self.weighted_models:
            ratio = self._model_ratio(team, model, model_added)
            dims = 3
        demands = self.demand[team]
        for u, share, demand in zip(used[:dims], fair[:dims], demands[:dims], strict=True):
            if u <= 0 or share >= demand - _EPSILON:
                continue  # all it asks for fits in its share: not what limits it
            ratio = max(ratio, u / share if share > _EPSILON else math.inf)
        return ratio

    def top_of(self, team: str) -> str:
        """The top-level ancestor of ``team`` (itself at the top)."""
        top = team
        while (parent := self.nodes[top].parent_id) is not None:
            top = parent
        return top

    def pinned_guarantee(self, team: str | None, model: ModelKey) -> float | None:
        """``team``'s guarantee of ``model`` when work pinned to it (one model, the same
        words as the guarantee names) falls under a per-model guarantee, else None."""
        if team is None or model is None or not self.model_guarantee or len(model) != 1:
            return None
        return self.model_guarantee.get((team, model))

    def order_key(
        self,
        team: str | None,
        added: Mapping[str, Vector] | None = None,
        model: ModelKey = None,
        model_added: Mapping[tuple[str, ModelKey], float] | None = None,
        share_added: Mapping[tuple[str, ModelKey], float] | None = None,
    ) -> OrderKey:
        """Queue key among equal priorities (lower first): teams under their guarantee
        first, then the top-level ancestor's, then the team's own
        :meth:`fair_share_ratio`, the one furthest below its share first. ``added``: what
        the queue already put ahead, per node, counted as if it ran (progressive filling).

        For work pinned to a model the team has a per-model guarantee of (``model``, the
        key of the workload's request), "under its guarantee" means under that model's
        guarantee instead, counting ``model_added`` (what the queue already put ahead of
        that model for the team): such work goes first even when the team is at its GPU
        guarantee as a whole, and never jumps ahead once the team holds its guarantee of
        the model, however far below its whole guarantee it is.

        For work pinned to a model some node weighs, the ratios are over that model's fair
        shares in place of the GPU dimension's (:meth:`fair_share_ratio`), counting
        ``share_added`` (what the queue already put ahead of that model, per node: a
        department's with its teams').

        With a half-life each ratio is multiplied by the node's :meth:`usage_penalty`,
        and ties (nodes that run nothing) go to the smaller past usage (the last two
        elements, 0 without a half-life, so the order is then DRF's exactly)."""
        if team is None or team not in self.nodes:
            return (1, 0.0, 0.0, 0.0, 0.0)
        added = added or {}
        top = self.top_of(team)
        own = added.get(team, _ZERO)
        pinned = self.pinned_guarantee(team, model)
        if pinned is not None:
            held = self.model_held.get((team, model), 0.0)
            held += (model_added or {}).get((team, model), 0.0)
            under = held < pinned - _EPSILON
        else:
            guarantee = _vec(self.nodes[team].guarantee)
            used = _add(self.used[team], own)
            under = any(g > 0 for g in guarantee) and all(
                u < g - _EPSILON or g <= 0 for u, g in zip(used, guarantee, strict=True)
            )
        if model is not None and model in self.weighted_models:
            ahead = share_added or {}
            top_ratio = self.fair_share_ratio(
                top, added.get(top, _ZERO), model, ahead.get((top, model), 0.0)
            )
            team_ratio = self.fair_share_ratio(team, own, model, ahead.get((team, model), 0.0))
        else:
            top_ratio = self.fair_share_ratio(top, added.get(top, _ZERO))
            team_ratio = self.fair_share_ratio(team, own)
        if not self.half_life_s:
            return (0 if under else 1, top_ratio, team_ratio, 0.0, 0.0)
        top_exponent, team_exponent = self.usage_exponent(top), self.usage_exponent(team)
        return (
            0 if under else 1,
            _penalised(top_ratio, top_exponent),
            _penalised(team_ratio, team_exponent),
            top_exponent,
            team_exponent,
        )

    def within_limits(self, team: str, request: Resources) -> bool:
        """Whether ``team`` and its ancestors stay within their limits with ``request`` more."""
        extra = _vec(request)
        node: str | None = team
        while node is not None:
            limits = self.nodes[node].limit
            used = self.used[node]
            for dim, limit in enumerate(limits):
                if limit is not None and used[dim] + extra[dim] > limit + _EPSILON:
                    return False
            node = self.nodes[node].parent_id
        return True

    def within_guarantee(self, team: str, request: Resources) -> bool:
        """Whether ``team`` would still be within its guarantee with ``request`` more — the
        condition under which it may reclaim what it lent (see :func:`within_guarantee`)."""
        node = self.nodes[team]
        return within_guarantee(node.used, request, node.guarantee)


def weighted_models(nodes: Iterable[QueueNode]) -> frozenset[ModelKey]:
    """The keys of the GPU models some node gives an over-quota weight of their own."""
    return frozenset(
        key for node in nodes for model, _ in node.gpu_model_weights if (key := model_key(model))
    )


def _by_model(pairs: Iterable[tuple[str, float]]) -> dict[ModelKey, float]:
    """A node's (model as written, value) pairs by model key."""
    return {model_key(model): value for model, value in pairs}


def _penalised(ratio: float, exponent: float) -> float:
    """``ratio * 2^exponent``; exactly ``ratio`` at exponent 0 (no history)."""
    return ratio if exponent <= 0 else ratio * math.pow(2.0, exponent)


def within_guarantee(used: Resources, request: Resources, guarantee: Resources) -> bool:
    """Whether ``used + request`` stays within ``guarantee`` in every dimension the
    guarantee covers, and ``request`` asks for at least one of them (dimensions without a
    guarantee are neither lent nor reclaimed)."""
    pairs = list(zip(_vec(used), _vec(request), _vec(guarantee), strict=True))
    covered = [(u, e, g) for u, e, g in pairs if g > 0]
    return any(e > 0 for _, e, _ in covered) and all(u + e <= g for u, e, g in covered)


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index ``(sum x)^2 / (n * sum x^2)``: 1 when all are equal, 1/n when
    one has everything (1 for an empty or all-zero sequence)."""
    if not values:
        return 1.0
    squares = sum(v * v for v in values)
    if squares <= 0:
        return 1.0
    return sum(values) ** 2 / (len(values) * squares)
