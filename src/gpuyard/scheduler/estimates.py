"""When will a waiting workload start? Slurm's backfill estimate, on gpuyard's own placer.

The cycle that just ran (a dry run, :func:`~gpuyard.scheduler.engine.schedule_cycle`) says
what starts now and what waits. :func:`estimate_starts` then plays time forward: running
work that declared how long it runs (a duration, or a maximum lifetime) ends at
``started_at + declared``; at each such end, in time order, the waiting workloads are tried
again in queue order with the same filters, scorers and admission checks as a real cycle
(no preemption: an estimate is what happens if nothing more important arrives), and one
that fits is assumed to start then, holding its room until its own declared end.

What the estimate is, and is not:

- An upper bound under its assumptions (running work ends when it declared, nothing new
  arrives): work ending early, or cancelled, brings starts forward; a new workload of
  higher priority pushes them back. Slurm's ``squeue --start`` has the same caveats.
- A workload starts when **all** its missing replicas fit at once (a gang must; for the
  others it is the time the last one could start).
- Work with no declared end holds its room forever, so a workload that only such work
  blocks gets no estimate (None), as does one that waits for a reason time does not
  change (no server could ever hold it).
- Bounded: at most :data:`MAX_ESTIMATED` waiting workloads (the head of the queue) and
  :data:`MAX_END_TIMES` distinct end times are simulated; after a release, a workload is
  tried again only if a server that gained room passes its filters (a server's room
  only grows by its own releases, so the others cannot have changed its answer).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gpuyard.scheduler.decisions import CycleResult, PendingCode, ReplicaAssignment
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.placement import Placer
from gpuyard.scheduler.queue import fairshare_tree, order_queue
from gpuyard.scheduler.request import Request, build_request
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, SchedulerConfig
from gpuyard.scheduler.state import CycleState, NodeState, ReplicaKey

#: Waiting workloads estimated, from the head of the queue.
MAX_ESTIMATED = 200
#: Distinct end times played forward; later starts are left unknown.
MAX_END_TIMES = 500

#: Reasons that time alone does not change: no estimate for them.
_TIMELESS = frozenset({PendingCode.UNRESOLVABLE})


@dataclass(order=True)
class _End:
    at: float
    seq: int
    #: A replica running in the snapshot (server id, replica key) ...
    running: tuple[str, ReplicaKey] | None = field(default=None, compare=False)
    #: ... or a workload started by the simulation, with its assumed replicas ...
    started: tuple[Request, tuple[ReplicaAssignment, ...]] | None = field(
        default=None, compare=False
    )
    #: ... or a waiting workload whose backoff ends (nothing is released).
    wakes: str | None = field(default=None, compare=False)


@dataclass
class _Released:
    """What the ends at one time gave back."""

    nodes: list[NodeState] = field(default_factory=list)
    teams: set[str] = field(default_factory=set)
    woken: set[str] = field(default_factory=set)


class _Simulation:
    def __init__(
        self,
        snapshot: ClusterSnapshot,
        pending: Sequence[PendingWorkload],
        config: SchedulerConfig,
        now: float,
        declared: Mapping[str, float],
        cache: EngineCache,
    ) -> None:
        self.now = now
        self.declared = declared
        # The views cache is the engine's (read only here); the working state is fresh.
        self.cycle = CycleState(snapshot, now, config.min_runtime_seconds, cache.views)
        queue = order_queue(pending, snapshot.quotas, fairshare_tree(snapshot, pending))
        self.requests = [build_request(w, position) for position, w in enumerate(queue)]
        self.by_id = {r.id: r for r in self.requests}
        self.profile = cache.profile(config.profile).for_cycle(self.cycle, self.requests)
        self.placer = Placer(self.profile, self.cycle, config.candidates_to_score)
        self.ends: list[_End] = []
        self._seq = 0

    def push(self, end: _End) -> None:
        self._seq += 1
        end.seq = self._seq
        heapq.heappush(self.ends, end)

    def end_of(self, workload_id: str, started_at: float | None) -> float | None:
        declared = self.declared.get(workload_id)
        if declared is None:
            return None
        start = self.now if started_at is None else started_at
        return max(self.now, start + declared)  # overdue work ends any moment

    def apply_cycle(self, result: CycleResult) -> None:
        """What the cycle decided happens now: victims leave, admissions start."""
        cycle = self.cycle
        for admission in result.admitted:
            for victim in admission.victims:
                node = cycle.nodes.get(victim.server_id)
                key = (victim.workload_id, victim.replica)
                if node is not None and key in node.running:
                    cycle.evict(node, key)
            req = self.by_id.get(admission.workload_id)
            if req is None:
                continue
            for assignment in admission.assignments:
                node = cycle.nodes[assignment.server_id]
                cycle.assume(node, req.workload.team_id, req.per_replica, assignment.gpu_allocation)
            end = self.end_of(req.id, None)
            if end is not None:
                self.push(_End(end, 0, started=(req, admission.assignments)))

    def schedule_running_ends(self) -> None:
        for node in self.cycle.nodes.values():
            for replica in node.running_replicas():
                end = self.end_of(replica.workload_id, replica.started_at)
                if end is not None:
                    key = (replica.workload_id, replica.replica)
                    self.push(_End(end, 0, running=(node.id, key)))

    def release(self, end: _End, into: _Released) -> None:
        """Free what ``end`` held, noting the servers and teams that gained room."""
        cycle = self.cycle
        if end.wakes is not None:
            into.woken.add(end.wakes)
        elif end.running is not None:
            node_id, key = end.running
            node = cycle.nodes[node_id]
            if key in node.running:  # else evicted by the cycle already
                replica = cycle.finish(node, key)
                into.nodes.append(node)
                if replica.team_id is not None:
                    into.teams.add(replica.team_id)
        elif end.started is not None:
            req, assignments = end.started
            for assignment in assignments:
                self.placer.unplace(req, assignment)
            into.nodes.extend(cycle.nodes[a.server_id] for a in assignments)
            if req.workload.team_id is not None:
                into.teams.add(req.workload.team_id)

    def could_take(self, req: Request, released: _Released) -> bool:
        """Whether ``req``'s answer may have changed: its backoff ended, its team's quota
        gained room, or a server that gained room now passes its filters."""
        team = req.workload.team_id
        if req.id in released.woken or (team in released.teams and team in self.cycle.quotas):
            return True
        eligible = self.placer.group(req).eligible_ids
        return any(n.id in eligible and self.placer.status(req, n).ok for n in released.nodes)

    def try_start(self, req: Request, at: float) -> bool:
        """Place every missing replica of ``req`` at once, or nothing."""
        wanted = req.workload.replicas_missing
        for check in self.profile.admission:
            if check.admit(req, self.cycle, wanted).allowed < wanted:
                return False
        first = req.workload.first_missing_replica
        placed: list[ReplicaAssignment] = []
        for replica in range(first, first + wanted):
            assignment = self.placer.place(req, replica)
            if assignment is None:
                for done in placed:
                    self.placer.unplace(req, done)
                return False
            placed.append(assignment)
        end = self.end_of(req.id, at)
        if end is not None:
            self.push(_End(end, 0, started=(req, tuple(placed))))
        return True


def estimate_starts(
    snapshot: ClusterSnapshot,
    pending: Sequence[PendingWorkload],
    result: CycleResult,
    config: SchedulerConfig,
    now: float,
    declared: Mapping[str, float],
    cache: EngineCache | None = None,
) -> dict[str, float]:
    """{workload id: estimated start (epoch seconds)} for the workloads ``result`` left
    waiting, as far as the declared ends of running work tell (see the module's doc).

    ``declared`` holds each workload's declared run time in seconds (its duration, else its
    maximum lifetime); a workload missing from it runs until stopped. Workloads without an
    estimate are absent from the answer."""
    sim = _Simulation(snapshot, pending, config, now, declared, cache or EngineCache())
    sim.apply_cycle(result)
    sim.schedule_running_ends()
    waiting_ids = {p.workload_id for p in result.pending if p.code not in _TIMELESS}
    waiting = [r for r in sim.requests if r.id in waiting_ids][:MAX_ESTIMATED]
    for req in waiting:
        back = req.workload.backoff_until
        if back is not None and back > now:
            sim.push(_End(back, 0, wakes=req.id))
    estimates: dict[str, float] = {}
    end_times = 0
    while sim.ends and waiting and end_times < MAX_END_TIMES:
        at = sim.ends[0].at
        end_times += 1
        released = _Released()
        while sim.ends and sim.ends[0].at == at:
            sim.release(heapq.heappop(sim.ends), released)
        sim.cycle.now = at
        still: list[Request] = []
        for req in waiting:
            back = req.workload.backoff_until
            if back is not None and back > at:
                still.append(req)
            elif sim.could_take(req, released) and sim.try_start(req, at):
                estimates[req.id] = at
            else:
                still.append(req)
        waiting = still
    return estimates
