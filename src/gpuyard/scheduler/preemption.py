"""Preemption (DESIGN.md section 5): evict the fewest lower-priority replicas, one server.

Who may be evicted: a running replica of *strictly lower* priority than the preemptor that
is ``preemptible`` and not protected by ``min_runtime_seconds`` (it started less than that
long ago; one not started yet, ``started_at`` None, is not protected:
:func:`~gpuyard.scheduler.state.is_protected`). Replicas placed earlier in the same cycle are
not running yet and are never victims; a replica evicted earlier in the cycle is gone.

Per server the *minimal* victim set is chosen by :func:`victims_key`, then servers are
compared by :func:`server_key` (both documented as numbered criteria below).

Search: per server an exact search over set sizes 1, 2, 3, ... (starting at a lower bound
from the summed resources), enumerating the combinations of each size and stopping at the
first size with a fitting set; a set fits when the free resources plus the victims' cover
the batch and the GPU slot choice succeeds on the devices the victims leave (two half-GPU
victims on different devices do not make a whole GPU). Candidates per server are capped at
:data:`MAX_CANDIDATES` (the cheapest first) and combinations at :data:`MAX_CHECKS`, after
which a greedy evict-then-reprieve pass answers instead; below the caps (up to 16
evictable replicas per server, e.g. C(16, 4) = 1820 sets of four) the answer is exact.
Servers are visited by their lowest evictable priority, so once the best set's highest
priority is below the next server's lowest, no later server can win (exact pruning for one
replica); the search stops after ``preemption_candidates`` servers that can make room.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.framework import VictimSelector, VictimSet
from gpuyard.scheduler.gpu_slots import choose_batch, choose_slots
from gpuyard.scheduler.index import GroupIndex
from gpuyard.scheduler.request import Request
from gpuyard.scheduler.snapshot import GpuAllocation, RunningReplica
from gpuyard.scheduler.state import CycleState, NodeState

MAX_CANDIDATES = 16
MAX_CHECKS = 20_000

_Vec = tuple[int, int, int, int]
_Fits = Callable[[Sequence[int]], list[GpuAllocation] | None]


def victims_key(vs: VictimSet) -> tuple[object, ...]:
    """Order of the fitting victim sets on one server; the first is its minimal set.

    1. fewest victims;
    2. lowest highest victim priority;
    3. least evicted GPU milli;
    4. youngest: the latest start time of the set's longest-running victim (a victim not
       started yet counts as starting ``now``), so the least finished work is thrown away;
    5. deterministic tie-break: the sorted (workload_id, replica) pairs.
    """
    ids = tuple(sorted((v.workload_id, v.replica) for v in vs.victims))
    return (len(vs.victims), vs.max_priority, vs.gpu_milli, -vs.oldest_start, ids)


def server_key(vs: VictimSet) -> tuple[object, ...]:
    """Order of servers, each with its minimal victim set; the first one is preempted on.

    1. lowest highest victim priority;
    2. fewest victims;
    3. least evicted GPU milli;
    4. youngest victims (as in :func:`victims_key`: latest start of the oldest victim);
    5. deterministic tie-break: server id.
    """
    return (vs.max_priority, len(vs.victims), vs.gpu_milli, -vs.oldest_start, vs.server_id)


def victim_set(
    server_id: str,
    victims: Sequence[RunningReplica],
    allocations: Sequence[GpuAllocation],
    now: float,
) -> VictimSet:
    return VictimSet(
        server_id=server_id,
        victims=tuple(victims),
        allocations=tuple(allocations),
        max_priority=max((v.priority for v in victims), default=0),
        gpu_milli=sum(v.resources.gpu_milli for v in victims),
        oldest_start=min((_start(v, now) for v in victims), default=now),
    )


class MinimalVictims:
    """Victim selector ``minimal_victims``: the exact minimal set on one server."""

    name = "minimal_victims"

    def select(
        self,
        req: Request,
        node: NodeState,
        candidates: list[RunningReplica],
        batch: int,
        now: float,
        max_victims: int | None = None,
    ) -> VictimSet | None:
        cands = sorted(candidates, key=lambda r: _cheap_first(r, now))[:MAX_CANDIDATES]
        need = req.per_replica.scaled(batch)
        free = (node.free_cpu, node.free_ram, node.free_storage, node.free_gpu)
        want = (need.cpu_milli, need.ram_mib, need.storage_mib, need.gpu_milli)
        deficit: _Vec = (
            want[0] - free[0],
            want[1] - free[1],
            want[2] - free[2],
            want[3] - free[3],
        )
        vecs = [_vec(r) for r in cands]
        positions = node.matching(req.model)
        gpu = req.per_replica.gpu_milli
        memory_mib = req.gpu_memory_mib

        def fits(combo: Sequence[int]) -> list[GpuAllocation] | None:
            for d in range(4):
                if deficit[d] > 0 and sum(vecs[i][d] for i in combo) < deficit[d]:
                    return None
            if gpu == 0:
                return [()] * batch
            alloc = list(node.dev_alloc)
            memory = list(node.dev_memory)
            for i in combo:
                freed_memory = cands[i].resources.gpu_memory_mib
                for index, milli in cands[i].gpu_allocation:
                    pos = node.pos_of.get(index)
                    if pos is not None:
                        alloc[pos] -= milli
                        memory[pos] += freed_memory
            if batch == 1 and not memory_mib:
                one = choose_slots(node.dev_index, alloc, positions, gpu)
                return None if one is None else [one]
            return choose_batch(node.dev_index, alloc, positions, gpu, batch, memory, memory_mib)

        everyone = list(range(len(cands)))
        if fits(everyone) is None:
            return None
        checks = 0
        smallest = max(
            _size_lower_bound(deficit, vecs),
            _device_lower_bound(node, cands, positions, req.whole_gpus * batch),
        )
        largest = len(cands) if max_victims is None else min(len(cands), max_victims)
        # victims_key without building a VictimSet per fitting combination: within one
        # size, (highest priority, GPU milli, youngest oldest start, ids) decides.
        prio = [r.priority for r in cands]
        gpu_of = [r.resources.gpu_milli for r in cands]
        start = [_start(r, now) for r in cands]
        ident = [(r.workload_id, r.replica) for r in cands]
        for size in range(smallest, largest + 1):
            best: tuple[Sequence[int], list[GpuAllocation]] | None = None
            best_key: tuple[object, ...] = ()
            for combo in combinations(everyone, size):
                checks += 1
                if checks > MAX_CHECKS:
                    found = _greedy(node.id, cands, fits, now)
                    if found is None or max_victims is None:
                        return found
                    return found if len(found.victims) <= max_victims else None
                # Rank before testing the fit (the costly part): a combination that
                # would lose to the best fitting one so far need not be tested.
                highest = max((prio[i] for i in combo), default=0)
                if best is not None and highest > best_key[0]:  # type: ignore[operator]
                    continue
                key = (
                    highest,
                    sum(gpu_of[i] for i in combo),
                    -min((start[i] for i in combo), default=now),
                    tuple(sorted(ident[i] for i in combo)),
                )
                if best is not None and key >= best_key:
                    continue
                allocs = fits(combo)
                if allocs is not None:
                    best, best_key = (combo, allocs), key
            if best is not None:
                chosen, chosen_allocs = best
                return victim_set(node.id, [cands[i] for i in chosen], chosen_allocs, now)
        return None


def find_preemption(
    req: Request,
    batch: int,
    group: GroupIndex,
    cycle: CycleState,
    selector: VictimSelector,
    max_servers: int,
) -> VictimSet | None:
    """The best server and its minimal victims for ``batch`` replicas of ``req``, if any.

    Servers are visited by their lowest evictable priority (then in snapshot order); the
    evictable replicas themselves (preemptible, not protected by ``min_runtime_seconds``)
    were worked out once when the cycle's state was built.
    """
    need = req.per_replica.scaled(batch)
    devices = max(req.whole_gpus * batch, 1) if req.wants_gpu else 0
    best: VictimSet | None = None
    searched = 0
    team = req.workload.team_id
    # Reclaim (scheduler/fairshare.py): a team that stays within its guarantee with
    # ``need`` may also evict other teams' borrowed work, whatever its priority.
    reclaim = cycle.may_reclaim(team, need)
    # Per-GPU-model guarantees: work pinned to a model its team is guaranteed, within that
    # guarantee (even past its guarantee in all), reclaims that model's GPUs from teams
    # that borrow and hold more of it than their own guarantee of it, never taking them
    # below either guarantee (docs/architecture.md, "Per-GPU-model guarantees").
    model = None if reclaim else cycle.model_reclaim(team, req.model, need)

    def evictable(r: RunningReplica) -> bool:
        if r.workload_id == req.id:
            return False  # never its own (a raised priority may not be copied to them yet)
        if r.priority < req.priority:
            return True
        if r.team_id == team:
            return False
        if not (reclaim or model is not None) or cycle.borrowed(r.team_id).is_zero():
            return False
        return model is None or cycle.model_borrowed(r.team_id, model) > 0

    reclaiming = reclaim or model is not None
    for low in sorted(p for p in cycle.by_lowest_evictable if p < req.priority or reclaiming):
        if batch == 1 and best is not None and low > best.max_priority:
            break  # every set from here on has a victim of priority >= low: none can win
        for node in list(cycle.by_lowest_evictable[low].values()):
            if node.id not in group.eligible_ids:
                continue
            if not could_ever_hold(req, node, cycle, need, devices):
                continue
            victims = [r for r in node.evictable if evictable(r)]
            if not victims:
                continue
            # Every set here has a victim of priority >= low, so once the best set so far
            # has priority <= low, only as many victims or fewer can still beat it.
            bound = len(best.victims) if best is not None and best.max_priority <= low else None
            found = selector.select(req, node, victims, batch, cycle.now, bound)
            if found is None:
                continue  # cheap: evicting every candidate would not make room here
            if reclaiming and not _within_borrowed(found, req.priority, cycle):
                # The selector does not know what each borrower lent: its set took too
                # much from one. Offer it only what each borrower may lose, and ask again.
                lendable = _within_each_borrowed(victims, req.priority, cycle)
                found = selector.select(req, node, lendable, batch, cycle.now, bound)
                if found is None or not _within_borrowed(found, req.priority, cycle):
                    continue  # would reclaim below a borrower's guarantee (or a model's)
            if cycle.model_limits and cycle.model_limit_problem(
                team, [(node, found.allocations, found.victims)]
            ):
                continue  # would take the team past a per-GPU-model limit
            if best is None or server_key(found) < server_key(best):
                best = found
            # The cap bounds the exact searches that succeed, not the servers looked at:
            # counting hopeless servers let a full fleet starve preemptors (bench S3).
            searched += 1
            if max_servers and searched >= max_servers:
                return best
    return best


def _within_each_borrowed(
    victims: Sequence[RunningReplica], priority: int, cycle: CycleState
) -> list[RunningReplica]:
    """``victims`` less the reclaimed ones (not of lower priority) past what their team
    holds above its guarantee: per team, its cheapest replicas (lowest priority, then
    smallest) while they fit in what it borrowed. Any set chosen from what is left takes
    no more from a borrower than it lent, though not every such set is offered."""
    kept = [v for v in victims if v.priority < priority]
    by_team: dict[str | None, list[RunningReplica]] = {}
    for victim in victims:
        if victim.priority >= priority:
            by_team.setdefault(victim.team_id, []).append(victim)
    for team, replicas in by_team.items():
        room = cycle.borrowed(team)
        taken = Resources()
        for replica in sorted(replicas, key=_cheapest_first):
            if (taken + replica.resources).fits_in(room):
                taken = taken + replica.resources
                kept.append(replica)
    return kept


def _cheapest_first(replica: RunningReplica) -> tuple[int, int, int, int]:
    res = replica.resources
    return (replica.priority, res.gpu_milli, res.cpu_milli, res.ram_mib)


def _within_borrowed(found: VictimSet, priority: int, cycle: CycleState) -> bool:
    """Whether the victims reclaimed (those not of lower priority) take from each borrower
    no more than it holds above its guarantee: reclaim returns what was lent, never more;
    nor, of a GPU model a team is guaranteed, more than it holds above that guarantee."""
    taken: dict[str | None, Resources] = {}
    reclaimed: list[RunningReplica] = []
    for victim in found.victims:
        if victim.priority < priority:
            continue  # ordinary preemption, not reclaim
        taken[victim.team_id] = taken.get(victim.team_id, Resources()) + victim.resources
        reclaimed.append(victim)
    if not all(res.fits_in(cycle.borrowed(team)) for team, res in taken.items()):
        return False
    return all(
        milli <= cycle.model_borrowed(team, key)
        for (team, key), milli in cycle.model_taken(found.server_id, reclaimed).items()
    )


def reclaim_parties(req: Request, found: VictimSet) -> tuple[str | None, tuple[str, ...]]:
    """(lender, borrowers) of a preemption that reclaimed lent capacity — the victims not
    of lower priority were taken because their teams borrow — or (None, ())."""
    borrowers = tuple(
        sorted({v.team_id for v in found.victims if v.priority >= req.priority and v.team_id})
    )
    if not borrowers:
        return None, ()
    return req.workload.team_id, borrowers


def reclaim_reason(lender: str | None, borrowers: Sequence[str]) -> str:
    """The reason naming lender and borrowers ("" when nothing was reclaimed)."""
    if lender is None or not borrowers:
        return ""
    return (
        f"reclaimed for team {lender} (under its guarantee) from "
        f"{', '.join(borrowers)} (above their guarantee)"
    )


def could_ever_hold(
    req: Request, node: NodeState, cycle: CycleState, need: Resources, devices: int
) -> bool:
    """Whether ``node`` is not held for an earlier workload and, emptied, could hold
    ``need`` on ``devices`` devices of ``req``'s model: where preemption may look."""
    if cycle.blocked_by_hold(node.id, req.queue_pos, req.priority):
        return False
    if not need.fits_in(node.view.capacity) or len(node.matching(req.model)) < devices:
        return False
    # A share's GPU memory: some device of the model must have that much in all.
    return not req.gpu_memory_mib or any(
        node.view.gpus[p].memory_mib >= req.gpu_memory_mib for p in node.matching(req.model)
    )


def _start(replica: RunningReplica, now: float) -> float:
    return now if replica.started_at is None else replica.started_at


def _cheap_first(replica: RunningReplica, now: float) -> tuple[object, ...]:
    """Cheapest victims first: lowest priority, youngest, least GPU, then id."""
    return (
        replica.priority,
        -_start(replica, now),
        replica.resources.gpu_milli,
        replica.workload_id,
        replica.replica,
    )


def _vec(replica: RunningReplica) -> _Vec:
    res = replica.resources
    return (res.cpu_milli, res.ram_mib, res.storage_mib, res.gpu_milli)


def _size_lower_bound(deficit: _Vec, vecs: list[_Vec]) -> int:
    """Fewest victims that could cover the summed deficit of every dimension."""
    bound = 0
    for d in range(4):
        if deficit[d] <= 0:
            continue
        total = 0
        for count, amount in enumerate(sorted((v[d] for v in vecs), reverse=True), 1):
            total += amount
            if total >= deficit[d]:
                bound = max(bound, count)
                break
    return bound


def _device_lower_bound(
    node: NodeState, cands: list[RunningReplica], positions: tuple[int, ...], devices: int
) -> int:
    """Fewest victims that could free enough whole devices for a whole-GPU batch.

    A device is freed only when every replica on it is evicted, so freeing ``m`` devices
    touches at least the ``m`` cheapest devices' user counts; one victim spanning ``span``
    devices counts towards at most ``span`` of them.
    """
    missing = devices - node.whole_free(positions)
    if devices == 0 or missing <= 0:
        return 0
    matching = set(positions)
    users: dict[int, int] = {}
    freed: dict[int, int] = {}
    span = 1
    for replica in cands:
        mine = 0
        for index, milli in replica.gpu_allocation:
            pos = node.pos_of.get(index)
            if pos is not None and pos in matching:
                users[pos] = users.get(pos, 0) + 1
                freed[pos] = freed.get(pos, 0) + milli
                mine += 1
        span = max(span, mine)
    costs = sorted(count for pos, count in users.items() if freed[pos] == node.dev_alloc[pos])
    if len(costs) < missing:
        return len(cands) + 1  # cannot free enough devices: no set fits
    return -(-sum(costs[:missing]) // span)


def _greedy(
    server_id: str,
    cands: list[RunningReplica],
    fits: _Fits,
    now: float,
) -> VictimSet | None:
    """Beyond the search cap: evict cheapest-first until it fits, then reprieve each
    victim (most expensive first) whose eviction turns out unnecessary."""
    chosen: list[int] = []
    allocs: list[GpuAllocation] | None = None
    for i in range(len(cands)):
        chosen.append(i)
        allocs = fits(chosen)
        if allocs is not None:
            break
    if allocs is None:
        return None
    for i in reversed(list(chosen)):
        trial = [j for j in chosen if j != i]
        trial_allocs = fits(trial)
        if trial_allocs is not None:
            chosen, allocs = trial, trial_allocs
    return victim_set(server_id, [cands[i] for i in chosen], allocs, now)


_v: type[VictimSelector] = MinimalVictims
