"""The scheduling service: snapshot -> pure engine -> one atomic commit per decision.

A cycle (1) reads a snapshot of servers, reservations and the queue in one short read
transaction, (2) asks the pure engine for decisions, (3) applies the admissions
(``services/scheduling/admissions.py``) with compare-and-set updates (workload version, server and
GPU counters), so a decision that went stale because another process moved first fails
cleanly and is retried next cycle, and (4) records pending reasons that changed.

The snapshot comes from the context's :class:`SnapshotCache` (``ctx.snapshot_cache``, one
per database), kept across cycles, which re-reads only the rows that changed; the engine
gets the context's ``engine_cache``, which keeps what it derives from unchanged views. A
decision that fails its compare-and-set has the rows it involved re-read next cycle;
conflicts that persist cycle after cycle reload everything.

One bad workload never stops a cycle (``services/loops/item_failures.py``): a pending one whose
row cannot be read, whose placement fails on its own data, or whose pending reason the
database refuses is failed with a storable reason and logged once; the others are placed
and their reasons recorded as usual.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.runtimes.registry import runs_containers
from gpuyard.scheduler.decisions import Admission, CycleResult, Pending
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.snapshot import ClusterSnapshot, PendingWorkload, SchedulerConfig
from gpuyard.services.batches import write_batch_or_each
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import (
    blames_item,
    fail_workload,
    failure_reason,
    report_item_failure,
)
from gpuyard.services.loops.leases import Fenced, LeaseFence
from gpuyard.services.scheduling.admissions import (
    MAYBE_STALE,
    apply_admission,
    apply_admission_batch,
    went_stale,
)
from gpuyard.services.scheduling.cluster_leases import ClusterLeases, take_cluster_leases
from gpuyard.services.scheduling.snapshot_rows import QueueState
from gpuyard.store.workload_status import write_pending_reasons

log = get_logger(__name__)

#: Admissions applied per write transaction (together, or each in its own savepoint).
APPLY_BATCH = 64
_LOOP = "scheduler"


@dataclass(frozen=True)
class CycleStats:
    considered: int
    admitted: int
    conflicts: int
    preempted: int
    seconds: float


def scheduler_config(ctx: ServiceContext) -> SchedulerConfig:
    s = ctx.settings
    return SchedulerConfig(
        profile=s.scheduler_profile,
        starvation_seconds=s.starvation_seconds,
        min_runtime_seconds=s.min_runtime_seconds,
    )


def plan_cycle(
    ctx: ServiceContext, leases: ClusterLeases | None = None
) -> tuple[QueueState, CycleResult]:
    """Decide without applying: the queue view (GET /queue) uses this too. With
    ``leases`` that do not cover every cluster, the engine decides over this process's
    clusters only (:func:`scoped`); the state returned is the whole snapshot's."""
    with ctx.db.read() as session:
        container_kinds = ctx.runtimes.kinds_where(runs_containers)
        state = ctx.snapshot_cache.refresh(session, container_kinds)
    snapshot, pending = state.snapshot, state.pending
    if leases is not None and not leases.every_cluster:
        snapshot, pending = scoped(snapshot, pending, leases.fences.keys())
    result = schedule_cycle(
        snapshot,
        pending,
        scheduler_config(ctx),
        ctx.now().timestamp(),
        ctx.engine_cache,
    )
    return state, result


def scoped(
    snapshot: ClusterSnapshot, pending: list[PendingWorkload], clusters: Iterable[str]
) -> tuple[ClusterSnapshot, list[PendingWorkload]]:
    """The part of a cycle's input that belongs to ``clusters``: their servers and what runs
    on them, the workloads pinned to them and those that name no cluster. Team quotas keep
    their whole-fleet use, so a team's quota counts what it runs elsewhere."""
    held = set(clusters)
    servers = tuple(v for v in snapshot.servers if v.cluster_id in held)
    on_held = {v.id for v in servers}
    running = tuple(r for r in snapshot.running if r.server_id in on_held)
    mine = [p for p in pending if p.cluster_id is None or p.cluster_id in held]
    return ClusterSnapshot(servers, running, snapshot.quotas, snapshot.teams), mine


def run_scheduling_cycle(ctx: ServiceContext) -> CycleStats:
    """One full cycle: plan, apply the admissions, record reasons.

    Admissions without victims are applied in batches: one transaction per batch, the
    decisions together, or each inside its own savepoint when one went stale, so it rolls
    back alone while the others commit. Admissions with victims each get a transaction of
    their own (evictions and the preemptor's reservation commit together).

    Where leases are on, the cycle plans the clusters whose scheduler leases this process
    holds (``cluster_leases.py``; all of them when it is the only scheduler), and every
    apply checks, in its own transaction, that it still holds the leases of the clusters
    it writes to at the tokens it planned under; once another process took one over, the
    cycle stops."""
    started = time.perf_counter()
    leases = take_cluster_leases(ctx)
    if leases is not None and not leases.fences and not leases.home:
        return CycleStats(0, 0, 0, 0, time.perf_counter() - started)
    state, result = plan_cycle(ctx, leases)
    writes_unclustered = leases is None or leases.home
    if state.set_aside and writes_unclustered:
        _fail_set_aside(ctx, state)
    fences = _Fences(leases, state)
    applied = _Applied()
    try:
        _apply_admissions(ctx, result, state, fences, applied)
    except Fenced:
        # Paused past a lease while another process took over: the rest of this plan is
        # stale, and its other writes (failures, reasons) belong to the new holder's cycle.
        took = time.perf_counter() - started
        fenced = CycleStats(len(state.pending), applied.admitted, 0, applied.preempted, took)
        ctx.metrics.record_cycle(fenced)  # what it did apply before the fence counts
        return fenced
    for admission, error in applied.failed:
        report_item_failure(_LOOP, admission.workload_id, error, "admission not applied")
        reason = failure_reason("the scheduler could not apply its placement", error)
        status = state.seen[admission.workload_id].status
        fail_workload(ctx, admission.workload_id, reason, loop=_LOOP, expect={status})
    waiting = (*result.pending, *applied.no_ports)
    if leases is not None and not leases.every_cluster:
        pinned = {p.workload_id: p.cluster_id for p in state.pending}
        waiting = tuple(p for p in waiting if pinned.get(p.workload_id) or writes_unclustered)
    record_pending_reasons(ctx, waiting, state)
    conflicts = len(applied.stale)
    ctx.snapshot_cache.note_conflicts(*_conflicted_rows(applied.stale))
    if conflicts:
        ctx.scheduler_wakeup.notify()  # another decider moved first: look again soon
    if applied.admitted and state.docker_servers:
        ctx.starter_wakeup.notify()  # containers to create for what was just scheduled
    stats = CycleStats(
        considered=len(state.pending),
        admitted=applied.admitted,
        conflicts=conflicts,
        preempted=applied.preempted,
        seconds=time.perf_counter() - started,
    )
    ctx.metrics.record_cycle(stats)  # a cycle without the lease did nothing to count
    return stats


class _Fences:
    """The fences an admission is applied under: those of its servers' clusters."""

    def __init__(self, leases: ClusterLeases | None, state: QueueState) -> None:
        self.leases = leases
        self.cluster_of = (
            {} if leases is None else {v.id: v.cluster_id for v in state.snapshot.servers}
        )

    def of(self, admissions: Iterable[Admission]) -> tuple[LeaseFence, ...]:
        if self.leases is None:
            return ()
        clusters = {self.cluster_of[a.server_id] for adm in admissions for a in adm.assignments}
        return self.leases.fences_of(clusters)


@dataclass
class _Applied:
    """What a cycle's apply did so far (kept when a fence stops it half way)."""

    admitted: int = 0
    preempted: int = 0
    stale: list[Admission] = field(default_factory=list)
    no_ports: list[Pending] = field(default_factory=list)
    failed: list[tuple[Admission, Exception]] = field(default_factory=list)


def _apply_admissions(
    ctx: ServiceContext,
    result: CycleResult,
    state: QueueState,
    fences: _Fences,
    applied: _Applied,
) -> None:
    plain = [a for a in result.admitted if not a.victims]
    for first in range(0, len(plain), APPLY_BATCH):
        admissions = plain[first : first + APPLY_BATCH]
        batch = apply_admission_batch(ctx, admissions, state, fences.of(admissions))
        applied.admitted += batch.applied
        applied.stale += batch.stale_admissions
        applied.no_ports += batch.no_ports
        applied.failed += batch.failed
    for admission in (a for a in result.admitted if a.victims):
        try:
            seen = state.seen[admission.workload_id]
            victims = {v.workload_id: state.seen[v.workload_id].version for v in admission.victims}
            applied.preempted += apply_admission(
                ctx, admission, seen, state.docker_servers, victims, fences.of([admission])
            )
            applied.admitted += 1
        except Fenced:
            raise
        except Exception as exc:
            if isinstance(exc, MAYBE_STALE) and went_stale(exc):
                applied.stale.append(admission)
                log.info("admission_conflict", workload_id=admission.workload_id, error=str(exc))
            elif blames_item(exc):  # the preemptor's data or a victim's: skipped, not failed
                report_item_failure(_LOOP, admission.workload_id, exc, "preemption not applied")
            else:
                raise


def _conflicted_rows(stale: list[Admission]) -> tuple[set[str], set[str]]:
    """The servers and workloads (preemptors and victims) of decisions that went stale."""
    servers = {a.server_id for adm in stale for a in adm.assignments}
    workloads = {adm.workload_id for adm in stale} | {
        v.workload_id for adm in stale for v in adm.victims
    }
    return servers, workloads


def _fail_set_aside(ctx: ServiceContext, state: QueueState) -> None:
    """Workloads the snapshot left out, their rows unreadable: each is logged once, and a
    pending one (or one whose status could not be read) is failed with a reason; one that
    holds resources keeps running, out of the scheduler's view."""
    for workload_id, aside in state.set_aside.items():
        report_item_failure(_LOOP, workload_id, aside.error, "left out of the snapshot")
        if aside.status in (None, WorkloadStatus.PENDING.value):
            reason = failure_reason("the scheduler could not read its row", aside.error)
            fail_workload(ctx, workload_id, reason, loop=_LOOP, expect={WorkloadStatus.PENDING})


def record_pending_reasons(
    ctx: ServiceContext, pending: tuple[Pending, ...], state: QueueState
) -> None:
    """Write reasons that changed, in one statement. No version bump (not a state change),
    but only where the row is still the version the cycle saw.

    A reason the database refuses (it quotes a node selector holding a NUL, say) would
    fail the statement for every workload: then each is written alone, and a pending
    workload whose reason cannot be stored is failed with one that can."""
    changed: list[dict[str, object]] = [
        {
            "wid": p.workload_id,
            "seen": state.seen[p.workload_id].version,
            "new_reason": p.reason,
            "new_code": p.code.value,
        }
        for p in pending
        if state.seen[p.workload_id].reason != p.reason
    ]
    if not changed:
        return
    unstorable: list[tuple[str, Exception]] = []

    def unstorable_or_raise(params: dict[str, object], exc: Exception) -> None:
        if not blames_item(exc):
            raise exc
        unstorable.append((str(params["wid"]), exc))

    with ctx.db.write() as session:
        write_batch_or_each(
            session,
            changed,
            lambda rows: write_pending_reasons(session, rows),
            lambda params: write_pending_reasons(session, [params]),
            blames_item,
            unstorable_or_raise,
            "pending_reasons",
        )
    for workload_id, error in unstorable:
        report_item_failure(_LOOP, workload_id, error, "pending reason not stored")
        reason = failure_reason("its pending reason could not be stored", error)
        fail_workload(ctx, workload_id, reason, loop=_LOOP, expect={WorkloadStatus.PENDING})
