"""Plans: where a request would go now, whom it would preempt, or why it waits.

``POST /api/v1/workloads/plan`` (and ``gpuyard run --dry-run``) takes a submission's body,
checks it as a submission is checked (the same 422s), and runs one scheduling cycle, as
GET /queue does, over the scheduler's current view with the request added at the back of
its priority (submitted now). Nothing is written: not the workload, not a reason, not the
engine's cache (the cycle runs without it), so a plan never changes what the scheduler
does next. On an unchanged world the next cycle after submitting the same body places it
where the plan said (the test of this module is that property).

Victims are named only where the caller may read them (WORKLOAD_READ); the others are
counted. The estimated start is the queue's (``scheduler/estimates.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gpuyard.auth.caller import Caller
from gpuyard.runtimes.registry import runs_containers
from gpuyard.scheduler.decisions import Admission, Pending
from gpuyard.scheduler.engine import schedule_cycle
from gpuyard.scheduler.estimates import estimate_starts
from gpuyard.scheduler.snapshot import PendingWorkload, quota_holder
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import visible_workloads
from gpuyard.services.scheduling.cycle import scheduler_config
from gpuyard.services.workloads.submission import WorkloadSpec, validated_submission
from gpuyard.store.base import new_id
from gpuyard.store.workloads import declared_run_times, workloads_by_id


@dataclass(frozen=True)
class PlannedReplica:
    replica: int
    server_id: str
    server_name: str
    gpu_indices: tuple[int, ...]


@dataclass(frozen=True)
class PlannedVictim:
    """A replica the request would preempt, of a workload the caller may read."""

    workload_id: str
    name: str
    replica: int
    server_name: str


@dataclass(frozen=True)
class Plan:
    """The answer of one dry-run cycle for a request."""

    #: Placed now (``placements``, maybe by preempting ``preempts``), or it would wait.
    starts_now: bool
    placements: tuple[PlannedReplica, ...]
    preempts: tuple[PlannedVictim, ...]
    #: Victims of workloads the caller may not read: counted, never named.
    preempts_hidden: int
    #: Why it would wait (a PendingCode value and its reason); None when it starts now.
    code: str | None
    reason: str | None
    #: When it would start: now, the estimate (running work ending when it declared), or
    #: None when nothing in its way declared an end or nothing could hold it.
    estimated_start: datetime | None


def plan_workload(ctx: ServiceContext, caller: Caller, spec: WorkloadSpec) -> Plan:
    """Check ``spec`` as a submission and say what one cycle would do with it now."""
    workload = validated_submission(ctx, caller, spec)
    with ctx.db.read() as session:
        state = ctx.snapshot_cache.refresh(session, ctx.runtimes.kinds_where(runs_containers))
        declared = declared_run_times(session)
    now = ctx.now().timestamp()
    planned_id = f"plan-{new_id()}"  # no row has it: the request is nobody's yet
    request = PendingWorkload(
        workload_id=planned_id,
        priority=workload.priority,
        submitted_at=now,
        resources=workload.request,
        name=workload.name,
        gpu_model=workload.gpu_model,
        cluster_id=workload.cluster_id,
        node_selector=dict(workload.node_selector),
        team_id=quota_holder(workload.team_id, workload.owner_id),
        replicas_missing=workload.replicas,
        gang=workload.gang,
        preemptible=workload.preemptible,
    )
    pending = [*state.pending, request]
    config = scheduler_config(ctx)
    # No engine cache: what it keeps must not depend on a request that was never made.
    result = schedule_cycle(state.snapshot, pending, config, now)
    servers = {s.id: s.name for s in state.snapshot.servers}
    admission = next((a for a in result.admitted if a.workload_id == planned_id), None)
    if admission is not None:
        return _placed(ctx, caller, admission, servers, now)
    waits = next(p for p in result.pending if p.workload_id == planned_id)
    starts = estimate_starts(state.snapshot, pending, result, config, now, declared)
    return _waits(waits, starts.get(planned_id))


def _placed(
    ctx: ServiceContext,
    caller: Caller,
    admission: Admission,
    servers: dict[str, str],
    now: float,
) -> Plan:
    placements = tuple(
        PlannedReplica(
            a.replica,
            a.server_id,
            servers.get(a.server_id, a.server_id),
            tuple(index for index, _milli in a.gpu_allocation),
        )
        for a in sorted(admission.assignments, key=lambda a: a.replica)
    )
    victim_ids = {v.workload_id for v in admission.victims}
    with ctx.db.read() as session:
        readable = (
            workloads_by_id(session, victim_ids, visible_workloads(caller)) if victim_ids else {}
        )
    named = tuple(
        PlannedVictim(
            v.workload_id,
            readable[v.workload_id].name,
            v.replica,
            servers.get(v.server_id, v.server_id),
        )
        for v in admission.victims
        if v.workload_id in readable
    )
    return Plan(
        starts_now=True,
        placements=placements,
        preempts=named,
        preempts_hidden=len(admission.victims) - len(named),
        code=None,
        reason=None,
        estimated_start=datetime.fromtimestamp(now, UTC),
    )


def _waits(waits: Pending, start: float | None) -> Plan:
    return Plan(
        starts_now=False,
        placements=(),
        preempts=(),
        preempts_hidden=0,
        code=waits.code.value,
        reason=waits.reason,
        estimated_start=None if start is None else datetime.fromtimestamp(start, UTC),
    )
