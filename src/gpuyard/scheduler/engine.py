"""One scheduling cycle (DESIGN.md section 5), read top to bottom like its design.

:func:`schedule_cycle` is pure: it reads a :class:`ClusterSnapshot` and a list of pending
workloads and returns decisions; the services layer commits each decision atomically.

How to apply an :class:`Admission` (one transaction per admission, in the order returned):
release every victim's reservation (its ``RunningReplica.resources`` and GPU slots) and mark
it preempted, then reserve each assignment's per-replica ``resources`` and exactly its
``gpu_allocation`` on ``server_id``. Decisions of one cycle assume the earlier ones were
applied; if one fails to commit (its guard saw a changed server), the later ones stay
within capacity as long as each commit is guarded, and whatever fails is simply decided
again next cycle. Victims' workloads are not placed again in the same cycle (BACKOFF), and
a server where victims were evicted takes no work of their priority or lower for the rest
of the cycle, so the freed room goes to the preemptor (the thrashing bug).
"""

from __future__ import annotations

from collections.abc import Sequence

from gpuyard.scheduler.decisions import (
    Admission,
    CycleResult,
    Pending,
    PendingCode,
    ReplicaAssignment,
    Victim,
)
from gpuyard.scheduler.engine_cache import EngineCache
from gpuyard.scheduler.framework import AdmitResult, Profile, VictimSet
from gpuyard.scheduler.gang_preemption import find_gang_preemption
from gpuyard.scheduler.placement import Placer
from gpuyard.scheduler.preemption import find_preemption, reclaim_parties, reclaim_reason
from gpuyard.scheduler.queue import fairshare_tree, order_queue
from gpuyard.scheduler.reasons import Diagnosis, duration, fit_error, join
from gpuyard.scheduler.request import Request, build_request
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, SchedulerConfig
from gpuyard.scheduler.starvation import choose_reservation, is_starving
from gpuyard.scheduler.state import CycleState, Hold

_NO_PREEMPTION = "no server frees enough room by evicting lower-priority preemptible work"


def schedule_cycle(
    snapshot: ClusterSnapshot,
    pending: Sequence[PendingWorkload],
    config: SchedulerConfig,
    now: float,
    cache: EngineCache | None = None,
) -> CycleResult:
    """Decide which pending workloads start where, whom they evict, and why others wait.

    ``cache`` keeps what later cycles can reuse (the caller owns it; see
    :mod:`~gpuyard.scheduler.engine_cache`); without one, nothing outlives this cycle.

    1. Profile: the plugins of ``config.profile``, built once per cache from the registry.
    2. Working copy: a :class:`CycleState` over ``snapshot`` (which is never mutated);
       every decision is assumed into it, so later decisions account for earlier ones.
    3. Queue: ``pending`` ordered by :func:`~gpuyard.scheduler.queue.queue_key`, each
       workload's :class:`Request` built once (PreFilter).
    4. PreScore: scorers that look at the whole cycle (``fgd`` learns its workload mix from
       what runs and what waits) are prepared once, before any decision.
    5. Ordered iteration, per workload: backoff -> quota -> place replicas (gang: all or
       nothing) -> if short, preempt on one server (a gang: else over several) -> if still
       short and starving, reserve its best server -> pending reason. A workload that
       does not fit never blocks the ones behind it, except on servers held by a
       reservation or a preemption.
    6. Result: admissions in decision order, pending in queue order, and the queue order.
    """
    if cache is None:
        cache = EngineCache()
    cycle = CycleState(snapshot, now, config.min_runtime_seconds, cache.views)
    queue = order_queue(pending, snapshot.quotas, fairshare_tree(snapshot, pending))
    requests = [build_request(workload, position) for position, workload in enumerate(queue)]
    profile = cache.profile(config.profile).for_cycle(cycle, requests)
    run = _Cycle(profile, cycle, config)
    for req in requests:
        run.schedule(req)
    return CycleResult(
        admitted=tuple(run.admitted),
        pending=tuple(run.pending),
        order=tuple(w.workload_id for w in queue),
    )


class _Cycle:
    """Decisions of one cycle, accumulated in queue order."""

    def __init__(self, profile: Profile, cycle: CycleState, config: SchedulerConfig) -> None:
        self.profile = profile
        self.cycle = cycle
        self.config = config
        self.placer = Placer(profile, cycle, config.candidates_to_score)
        self.admitted: list[Admission] = []
        self.pending: list[Pending] = []
        self._reservations = 0
        # (group, per-replica request, batch) -> (epoch, highest priority that failed).
        self._preempt_fails: dict[tuple[object, ...], tuple[int, int]] = {}

    def schedule(self, req: Request) -> None:
        workload = req.workload
        if workload.replicas_missing <= 0:
            return
        waiting = self._must_wait(req)
        if waiting is not None:
            self.pending.append(waiting)
            return
        admit = self._admit(req, workload.replicas_missing)
        if workload.gang:
            self._schedule_gang(req, admit)
        else:
            self._schedule_each(req, admit)

    # -- steps -------------------------------------------------------------------------
    def _must_wait(self, req: Request) -> Pending | None:
        """Workloads that are not considered at all in this cycle."""
        workload = req.workload
        now = self.cycle.now
        if workload.backoff_until is not None and now < workload.backoff_until:
            reason = "preempted recently; back in the queue in " + duration(
                workload.backoff_until - now
            )
            return Pending(req.id, PendingCode.BACKOFF, reason)
        if req.id in self.cycle.evicted_workloads:
            # Never refill capacity freed for a preemptor with its own victims.
            reason = "a replica was preempted in this cycle; it waits for its backoff"
            return Pending(req.id, PendingCode.BACKOFF, reason)
        if not req.valid_gpu:
            reason = "gpu must be whole GPUs or a share of one GPU (0.1 to 0.9)"
            return Pending(req.id, PendingCode.UNRESOLVABLE, reason)
        return None

    def _admit(self, req: Request, replicas: int) -> AdmitResult:
        """The tightest answer of the admission checks (team quota)."""
        result = AdmitResult(replicas)
        for check in self.profile.admission:
            verdict = check.admit(req, self.cycle, replicas)
            if verdict.allowed < result.allowed:
                result = verdict
        return result

    def _schedule_each(self, req: Request, admit: AdmitResult) -> None:
        """Replicas independently: place as many as fit, preempt for one more."""
        workload = req.workload
        first = workload.first_missing_replica
        assignments: list[ReplicaAssignment] = []
        short = False
        for replica in range(first, first + admit.allowed):
            placed = self.placer.place(req, replica)
            if placed is None:
                short = True
                break
            assignments.append(placed)
        victims: tuple[Victim, ...] = ()
        note = ""
        lender: str | None = None
        borrowers: tuple[str, ...] = ()
        if short:
            found, note = self._preempt(req, 1)
            if found is not None:
                lender, borrowers = reclaim_parties(req, found)
                assignments += self._apply_preemption(req, found, [first + len(assignments)])
                victims = _victims(found)
                note = join(
                    ["preempting for one replica per cycle", reclaim_reason(lender, borrowers)]
                )
        if assignments:
            self.admitted.append(Admission(req.id, tuple(assignments), victims, lender, borrowers))
        missing = workload.replicas_missing
        if len(assignments) == missing:
            return
        prefix = f"placed {len(assignments)} of {missing} replicas" if missing > 1 else ""
        if not short:
            # The admission check stopped the rest; ask again for the numbers after placing.
            admit = self._admit(req, missing - len(assignments))
            code = admit.code or PendingCode.QUOTA
            self.pending.append(Pending(req.id, code, join([prefix, admit.reason])))
            return
        self._wait_for_room(req, self.placer.diagnose(req), prefix, note)

    def _schedule_gang(self, req: Request, admit: AdmitResult) -> None:
        """All missing replicas at once or none; preemption puts them all on one server."""
        workload = req.workload
        missing = workload.replicas_missing
        if admit.allowed < missing:
            self.pending.append(Pending(req.id, admit.code or PendingCode.QUOTA, admit.reason))
            return
        first = workload.first_missing_replica
        replicas = list(range(first, first + missing))
        assignments: list[ReplicaAssignment] = []
        for replica in replicas:
            placed = self.placer.place(req, replica)
            if placed is None:
                break
            assignments.append(placed)
        if len(assignments) == missing:
            self.admitted.append(Admission(req.id, tuple(assignments)))
            return
        diag = self.placer.diagnose(req)  # with the partial gang still assumed
        for placed in reversed(assignments):
            self.placer.unplace(req, placed)
        prefix = f"gang of {missing} starts all at once; only {len(assignments)} fit"
        found, note = self._preempt(req, missing)
        if found is not None:
            lender, borrowers = reclaim_parties(req, found)
            moved = self._apply_preemption(req, found, replicas)
            self.admitted.append(
                Admission(req.id, tuple(moved), _victims(found), lender, borrowers)
            )
            return
        spread = self._preempt_gang_across_servers(req, missing)
        if spread is not None:
            victims: list[Victim] = []
            assignments = []
            for part in spread:
                size = len(part.allocations)
                batch, replicas = replicas[:size], replicas[size:]
                assignments += self._apply_preemption(req, part, batch)
                victims += _victims(part)
            self.admitted.append(Admission(req.id, tuple(assignments), tuple(victims)))
            return
        if note:
            note += ", on one server or spread over several"
        self._wait_for_room(req, diag, prefix, note)

    def _preempt_gang_across_servers(
        self, req: Request, missing: int
    ) -> tuple[VictimSet, ...] | None:
        """Victims on several servers that together make room for the whole gang."""
        if not self.config.preemption:
            return None
        # Negative: apart from one-server; the team when per-GPU-model limits apply.
        whose = req.workload.team_id if self.cycle.model_limits else None
        key = (req.group_key, req.per_replica, -missing, whose)
        failed = self._preempt_fails.get(key)
        if failed is not None and failed[0] == self.cycle.epoch and req.priority <= failed[1]:
            return None
        found = find_gang_preemption(
            req, missing, self.placer.group(req), self.cycle, self.profile.victims
        )
        if found is None:
            self._preempt_fails[key] = (self.cycle.epoch, req.priority)
        return found

    def _preempt(self, req: Request, batch: int) -> tuple[VictimSet | None, str]:
        """Minimal victims on the best server, or why preemption cannot help."""
        if not self.config.preemption:
            return None, ""
        # A team that may reclaim sees more victims than the same request of another team.
        need = req.per_replica.scaled(batch)
        team = req.workload.team_id
        may_reclaim = (
            self.cycle.may_reclaim(team, need)
            or self.cycle.model_reclaim(team, req.model, need) is not None
        )
        lender = team if may_reclaim else None
        # Per-GPU-model limits make the answer one team's, not the shape's.
        whose = team if self.cycle.model_limits else None
        key = (req.group_key, req.per_replica, batch, lender, whose)
        failed = self._preempt_fails.get(key)
        # Within one epoch, fewer victims exist for a lower priority, never more.
        if failed is not None and failed[0] == self.cycle.epoch and req.priority <= failed[1]:
            return None, _NO_PREEMPTION
        found = find_preemption(
            req,
            batch,
            self.placer.group(req),
            self.cycle,
            self.profile.victims,
            self.config.preemption_candidates,
        )
        if found is None:
            self._preempt_fails[key] = (self.cycle.epoch, req.priority)
            return None, _NO_PREEMPTION
        return found, ""

    def _apply_preemption(
        self, req: Request, found: VictimSet, replicas: list[int]
    ) -> list[ReplicaAssignment]:
        """Evict the victims and give the freed room to the preemptor, holding the server."""
        node = self.cycle.nodes[found.server_id]
        for victim in found.victims:
            self.cycle.evict(node, (victim.workload_id, victim.replica))
        out: list[ReplicaAssignment] = []
        for replica, alloc in zip(replicas, found.allocations, strict=True):
            self.cycle.assume(node, req.workload.team_id, req.per_replica, alloc)
            out.append(ReplicaAssignment(replica, node.id, alloc))
        self.cycle.hold(node.id, Hold(req.queue_pos, req.id, "preemption", found.max_priority))
        return out

    def _wait_for_room(self, req: Request, diag: Diagnosis, prefix: str, note: str) -> None:
        """Emit the pending reason; a starving workload also reserves its best server."""
        code = diag.code
        if code is PendingCode.UNRESOLVABLE:
            note = ""  # nothing to preempt for: it fits no server as built
        elif code is PendingCode.QUOTA:
            note = ""  # every server is of a GPU model the team is at its limit of
        reason = join([prefix, fit_error(diag, req.workload.gpu_model), note])
        reserved: str | None = None
        since = req.workload.waiting_since
        waited = self.cycle.now - since
        if (
            code is not PendingCode.UNRESOLVABLE
            and is_starving(since, self.cycle.now, self.config.starvation_seconds)
            and self._reservations < self.config.max_reservations
        ):
            node = choose_reservation(req, self.placer.group(req), self.cycle)
            if node is not None:
                self.cycle.hold(node.id, Hold(req.queue_pos, req.id, "reservation", req.priority))
                self._reservations += 1
                reserved = node.id
                reason = join(
                    [reason, f"holds a reservation on {node.name} after waiting {duration(waited)}"]
                )
        self.pending.append(Pending(req.id, code, reason, reserved))


def _victims(found: VictimSet) -> tuple[Victim, ...]:
    return tuple(Victim(v.workload_id, v.replica, found.server_id) for v in found.victims)
