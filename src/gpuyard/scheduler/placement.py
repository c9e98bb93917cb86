"""Find the best server for one replica: filter, then score (kube's schedulePod).

The :class:`Placer` owns the per-cycle caches:

- one :class:`GroupIndex` per request group (static filters run once per group);
- a failure cache: within a cycle free capacity only shrinks (placements, holds) except when
  something is released (an eviction or a gang rollback bumps ``CycleState.epoch``), so a
  request shape that fitted nowhere keeps fitting nowhere until the epoch changes and the
  next identical request is answered without scanning the fleet again;
- a score cache: a request shape's slots and scores on a server are kept until the
  server changes (``NodeState.version``), since scorers read only the request's shape and
  the server's state (the first scorer's :class:`~gpuyard.scheduler.framework.CycleTerm`,
  which reads the whole cycle, is added at each comparison instead);
- a diagnosis cache: the per-server verdicts behind a pending reason cost a pass over the
  whole fleet, so they are taken once per request shape and cycle, when the shape first
  waits. Later workloads of the same shape in the same cycle reuse that reason, whose
  numbers may therefore be a few placements old; the next cycle recomputes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.decisions import ReplicaAssignment
from gpuyard.scheduler.framework import OK, CycleTerm, Profile, Status, Term
from gpuyard.scheduler.gpu_slots import choose_slots
from gpuyard.scheduler.index import GroupIndex
from gpuyard.scheduler.reasons import Diagnosis
from gpuyard.scheduler.request import GroupKey, Request
from gpuyard.scheduler.snapshot import GpuAllocation
from gpuyard.scheduler.state import CycleState, NodeState

_ShapeKey = tuple[GroupKey, Resources]
#: A shape, with the team when per-GPU-model limits make fitting depend on the team.
_FailKey = tuple[GroupKey, Resources] | tuple[GroupKey, Resources, str | None]


@dataclass(slots=True)
class _Scored:
    """One request shape scored on one server in one state (``NodeState.version``)."""

    version: int
    alloc: GpuAllocation
    head: float  # the first scorer's score, negated (lower is better)
    key: tuple[object, ...] | None = None  # every score, negated, then the server id


#: Feasible servers of each device-model class always scored, beyond the overall cap.
PER_CLASS_MINIMUM = 8


class Placer:
    """Places replicas into the cycle's working state with one profile's plugins."""

    def __init__(self, profile: Profile, cycle: CycleState, candidates_to_score: int) -> None:
        self.profile = profile
        self.cycle = cycle
        self._cap = candidates_to_score
        self._groups: dict[GroupKey, GroupIndex] = {}
        self._fails: dict[_FailKey, int] = {}  # shape -> epoch in which it fitted nowhere
        self._diagnoses: dict[_FailKey, Diagnosis] = {}
        # Shape -> server id -> its slots and scores in the server's current state. Scores
        # are a function of the request's shape and the server's state only, and equal
        # shapes (replicas, batches of one size) meet the same unchanged servers again.
        self._scored: dict[_ShapeKey, dict[str, _Scored]] = {}
        # Per-GPU-model limits make "fits nowhere" a verdict for one team, not a shape.
        self._per_team = bool(cycle.model_limits)
        first = profile.scorers[0] if profile.scorers else None
        #: The first scorer's term that reads the whole cycle (added fresh, never cached).
        self._term: Term | None = first.cycle_term() if isinstance(first, CycleTerm) else None

    def _fail_key(self, req: Request) -> _FailKey:
        if self._per_team:
            return (req.group_key, req.per_replica, req.workload.team_id)
        return (req.group_key, req.per_replica)

    def group(self, req: Request) -> GroupIndex:
        """The static-filter result and bucket index for ``req``'s group (built once)."""
        found = self._groups.get(req.group_key)
        if found is None:
            cycle = self.cycle
            found = GroupIndex(
                req.group_key, req, cycle.nodes.values(), self.profile.static_filters, cycle.views
            )
            self._groups[req.group_key] = found
        return found

    def status(self, req: Request, node: NodeState) -> Status:
        """The first failing dynamic filter's verdict, or OK."""
        for plugin in self.profile.filters:
            verdict = plugin.filter(req, node, self.cycle)
            if not verdict.ok:
                return verdict
        return OK

    def find(self, req: Request) -> tuple[NodeState, GpuAllocation] | None:
        """The best server and slots for one more replica of ``req``, not yet assumed."""
        key = (req.group_key, req.per_replica)
        fail_key = self._fail_key(req) if self._per_team else key
        if self._fails.get(fail_key) == self.cycle.epoch:
            return None
        group = self.group(req)
        feasible = self._feasible(req, group)
        if not feasible:
            self._fails[fail_key] = self.cycle.epoch
            return None
        best: NodeState | None = None
        best_alloc: GpuAllocation = ()
        best_key: tuple[object, ...] = ()
        gpu = req.per_replica.gpu_milli
        first, *rest = self.profile.scorers
        term = self._term
        scored = self._scored.setdefault(key, {})
        for node in feasible:
            entry = scored.get(node.id)
            if entry is None or entry.version != node.version:
                alloc = choose_slots(node.dev_index, node.dev_alloc, req.devices(node), gpu)
                if alloc is None:  # cannot happen after ``fit``; stay safe anyway
                    continue
                entry = _Scored(node.version, alloc, -first.score(req, node, alloc))
                scored[node.id] = entry
            head = entry.head
            if term is not None:
                # The first scorer's part that reads the whole cycle is never cached.
                head -= term(req, node, entry.alloc)
            if best is not None and head > best_key[0]:  # type: ignore[operator]
                continue  # loses on the first score: the later ones cannot matter
            found = entry.key
            if found is None:
                # Scores compare in profile order; the server id is the deterministic
                # tie-break.
                rest_scores = [-s.score(req, node, entry.alloc) for s in rest]
                found = entry.key = (entry.head, *rest_scores, node.id)
            if term is not None:
                found = (head, *found[1:])
            if best is None or found < best_key:
                best, best_alloc, best_key = node, entry.alloc, found
        return None if best is None else (best, best_alloc)

    def _feasible(self, req: Request, group: GroupIndex) -> list[NodeState]:
        """Servers that fit one more replica, in the profile's candidate order: the first
        ``candidates_to_score``, plus, on a fleet of several device-model classes (the set
        of GPU models a server holds), the first :data:`PER_CLASS_MINIMUM` of every class.

        With the overall cap alone, tightest-first order on a mixed fleet showed the scorers
        only servers of the models with the tightest servers, so the servers that would keep
        a scarce model free (FGD's model reserve) were never compared. Scoring the full cap
        of every class instead widens the choice so much that FGD's packing suffers (S5:
        FGD picks best among the tightest; bench/analysis.md), hence a small minimum.
        """
        cap = self._cap
        status = self.status
        candidates = self.profile.order.candidates(req, group)
        if not cap:
            return [node for node in candidates if status(req, node).ok]
        feasible: list[NodeState] = []
        if group.model_classes <= 1:
            for node in candidates:
                if status(req, node).ok:
                    feasible.append(node)
                    if len(feasible) >= cap:
                        break
            return feasible
        minimum = min(cap, PER_CLASS_MINIMUM)
        per_class: dict[frozenset[str], int] = {}
        short = group.model_classes  # classes still below the minimum
        for node in candidates:
            model_class = node.info.model_class
            seen = per_class.get(model_class, 0)
            if len(feasible) >= cap and seen >= minimum:
                continue
            if not status(req, node).ok:
                continue
            feasible.append(node)
            per_class[model_class] = seen + 1
            if seen + 1 == minimum:
                short -= 1
            if len(feasible) >= cap and short <= 0:
                break
        return feasible

    def place(self, req: Request, replica: int) -> ReplicaAssignment | None:
        """Find and assume one replica; None when it fits nowhere."""
        found = self.find(req)
        if found is None:
            return None
        node, alloc = found
        self.cycle.assume(node, req.workload.team_id, req.per_replica, alloc)
        return ReplicaAssignment(replica, node.id, alloc)

    def unplace(self, req: Request, assignment: ReplicaAssignment) -> None:
        """Forget a replica assumed by :meth:`place` (gang rollback)."""
        node = self.cycle.nodes[assignment.server_id]
        self.cycle.forget(node, req.workload.team_id, req.per_replica, assignment.gpu_allocation)

    def explain(self, req: Request, node: NodeState) -> Status:
        """Like :meth:`status`, with the numbers a pending reason needs."""
        for plugin in self.profile.filters:
            verdict = plugin.explain(req, node, self.cycle)
            if not verdict.ok:
                return verdict
        return OK

    def diagnose(self, req: Request) -> Diagnosis:
        """Every server's verdict on one more replica of ``req`` (once per shape and cycle)."""
        key = self._fail_key(req)
        cached = self._diagnoses.get(key)
        if cached is not None:
            return cached
        group = self.group(req)
        failures = [(node.name, verdict) for node, verdict in group.rejected]
        for node in group.eligible:
            verdict = self.explain(req, node)
            if not verdict.ok:
                failures.append((node.name, verdict))
        diag = Diagnosis(group.total, tuple(failures))
        self._diagnoses[key] = diag
        return diag
