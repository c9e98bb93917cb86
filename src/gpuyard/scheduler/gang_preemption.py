"""Gang preemption across servers: a gang that fits only by evicting on several servers.

:func:`~gpuyard.scheduler.preemption.find_preemption` puts a whole gang on one server.
When no single server can make room for all of it, :func:`find_gang_preemption` looks for
the cheapest way to spread it over several, all or nothing:

1. **Servers considered** (bounded): those that pass the gang's static filters, are not
   held for an earlier workload, could hold one replica as built, and either have
   evictable work of lower priority (at most :data:`MAX_GANG_SERVERS`, the cheapest
   lowest evictable priority first) or room for a replica now (at most one per missing
   replica, the roomiest first).
2. **Per server and batch** ``b`` (1 .. the replicas it could hold): the profile's victim
   selector gives the minimal victim set for ``b`` replicas there (the same exact search
   as for one server), only among victims of priority at most a threshold ``p``.
3. **Across servers**, for each threshold ``p`` from the lowest evictable priority up
   (below the gang's own): a knapsack over the servers picks how many replicas each takes
   so that every missing replica is placed with the fewest victims, then the least evicted
   GPU milli. The first threshold with an answer wins, so the set minimises, in order, the
   highest victim priority and the number of victims, exact within the bounds above. The
   evicted GPU milli is not exact: each server's set comes from its selector, whose
   :func:`~gpuyard.scheduler.preemption.victims_key` prefers a lower highest priority on
   that server to less milli, even where another server already sets the plan's highest
   priority (a hypothesis example: 3000 milli evicted where 2000 would do).

Gangs of more than :data:`MAX_GANG_REPLICAS` missing replicas keep the one-server rule.
The engine applies an answer like a one-server preemption on every server it names
(victims evicted, room assumed, the server held), in one admission, so the services layer
commits it in one transaction: no partial gang, and victims never flow back into the room
made for the gang in the same cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from gpuyard.scheduler.framework import VictimSelector, VictimSet
from gpuyard.scheduler.index import GroupIndex
from gpuyard.scheduler.preemption import could_ever_hold
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.state import CycleState, NodeState

#: Servers with evictable work considered for one gang.
MAX_GANG_SERVERS = 24
#: Larger gangs preempt only on one server.
MAX_GANG_REPLICAS = 16

#: (victims, GPU milli evicted) of a plan; lower is better.
_Cost = tuple[int, int]


def find_gang_preemption(
    req: Request,
    missing: int,
    group: GroupIndex,
    cycle: CycleState,
    selector: VictimSelector,
) -> tuple[VictimSet, ...] | None:
    """Per server, the victims to evict and the slots for its share of the gang's
    ``missing`` replicas (batch = its ``allocations``), together placing them all; None
    when no bounded plan exists. See the module's doc for what is minimal."""
    if missing < 2 or missing > MAX_GANG_REPLICAS:
        return None
    nodes = _servers(req, missing, group, cycle)
    if not nodes:
        return None
    levels = sorted(
        {
            r.priority
            for node in nodes
            for r in node.evictable
            if r.priority < req.priority and r.workload_id != req.id
        }
    )
    for threshold in levels:
        options = [_options(req, node, missing, threshold, cycle, selector) for node in nodes]
        plan = _cheapest(options, missing)
        if plan is not None:
            if cycle.model_limits and cycle.model_limit_problem(
                req.workload.team_id,
                [(cycle.nodes[p.server_id], p.allocations, p.victims) for p in plan],
            ):
                return None  # past a per-GPU-model limit: no partial gang either
            return plan
    return None


def _servers(req: Request, missing: int, group: GroupIndex, cycle: CycleState) -> list[NodeState]:
    one = req.per_replica
    devices = max(req.whole_gpus, 1) if req.wants_gpu else 0
    with_victims: list[NodeState] = []
    roomy: list[NodeState] = []
    for node in group.eligible:
        if not could_ever_hold(req, node, cycle, one, devices):
            continue
        low = node.lowest_evictable
        if low is not None and low < req.priority:
            with_victims.append(node)
        elif node.fits_aggregate(one):
            roomy.append(node)
    with_victims.sort(key=lambda n: (n.lowest_evictable, -n.free_gpu, n.id))
    roomy.sort(key=lambda n: (-n.free_gpu, -n.free_cpu, n.id))
    return with_victims[:MAX_GANG_SERVERS] + roomy[:missing]


def _options(
    req: Request,
    node: NodeState,
    missing: int,
    threshold: int,
    cycle: CycleState,
    selector: VictimSelector,
) -> list[VictimSet]:
    """The minimal victim set for 1, 2, ... replicas on ``node`` (victims of priority at
    most ``threshold``), as far as they fit."""
    candidates = [r for r in node.evictable if r.priority <= threshold and r.workload_id != req.id]
    found: list[VictimSet] = []
    for batch in range(1, missing + 1):
        if not req.per_replica.scaled(batch).fits_in(node.view.capacity):
            break
        chosen = selector.select(req, node, candidates, batch, cycle.now)
        if chosen is None:
            break  # more replicas need at least as much room: none fit either
        found.append(chosen)
    return found


def _cheapest(options: Sequence[list[VictimSet]], missing: int) -> tuple[VictimSet, ...] | None:
    """Knapsack over servers: the cheapest choice of one option (or none) per server that
    places exactly ``missing`` replicas."""
    # best[k]: cheapest (cost, chosen sets) placing k replicas over the servers so far.
    best: list[tuple[_Cost, tuple[VictimSet, ...]] | None] = [None] * (missing + 1)
    best[0] = ((0, 0), ())
    for sets in options:
        if not sets:
            continue
        nxt = list(best)
        for placed, entry in enumerate(best):
            if entry is None:
                continue
            cost, chosen = entry
            for batch, vs in enumerate(sets, start=1):
                total = placed + batch
                if total > missing:
                    break
                new_cost = (cost[0] + len(vs.victims), cost[1] + vs.gpu_milli)
                current = nxt[total]
                if current is None or new_cost < current[0]:
                    nxt[total] = (new_cost, (*chosen, vs))
        best = nxt
    done = best[missing]
    return None if done is None else done[1]
