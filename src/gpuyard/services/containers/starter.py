"""The starter loop: creates the containers of replicas the scheduler placed on servers
whose runtime runs containers (docker), then records them.

1. A read transaction finds scheduled/starting/running workloads' allocations on online or
   draining such servers that have no container yet, and builds their specs.
2. Outside any transaction, the runtime (the agent) creates and starts each container. Its
   create is idempotent by workload + replica, so a retry, or two starters racing, get the
   same one.
3. A short write transaction records the handle with a guard (``container_id IS NULL``
   and the workload's version) and moves the workload to running once every replica has
   a container (to starting only where the runtime's replicas run later: kubernetes pods,
   which the reconcile loop moves on). A definitive refusal (unknown image, no GPU
   runtime...) fails the workload with the agent's problem; an unreachable agent is left
   to the next tick and the health loop. A replica whose spec cannot be built or sent, or
   whose container cannot be recorded, fails its workload with a reason
   (``services/loops/item_failures.py``); the tick goes on with the others.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.domain.errors import NotFound
from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.runtimes.base import RuntimeFailure, RuntimeUnreachable
from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.containers.replica_specs import (
    ReplicaJob,
    load_replica_jobs,
    servers_of_kinds,
)
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import (
    blames_item,
    fail_workload,
    failure_reason,
    report_item_failure,
)
from gpuyard.services.loops.leases import Fenced, LeaseFence, check_fences
from gpuyard.services.scheduling.allocations import record_teardown, release_workload
from gpuyard.services.workloads.transitions import record_change, transition_workload
from gpuyard.store import containers as container_store
from gpuyard.store.workload_tables import AllocationRow, WorkloadRow

log = get_logger(__name__)
_HOLDING = [s.value for s in HOLDS_RESOURCES]
#: Containers created per tick (the rest wait for the next one).
BATCH = 32
_LOOP = "starter"


def start_scheduled(ctx: ServiceContext, fence: LeaseFence | None = None) -> int:
    """One tick; returns how many containers were recorded. ``fence``: the starter lease's
    term this tick runs under; once another process took it over, the records roll back
    and the tick stops (:class:`Fenced`)."""
    unbuildable: list[tuple[AllocationRow, Exception]] = []
    jobs = _replicas_to_start(ctx, unbuildable)
    for allocation, exc in unbuildable:
        _give_up(ctx, allocation.workload_id, exc, "its container spec could not be built")
    started = 0
    for job in jobs:
        try:
            started += _start(ctx, job, fence)
        except Fenced:
            raise
        except Exception as exc:  # this replica's own problem: the others go on
            if not blames_item(exc):
                log.info("start_deferred", workload_id=job.workload_id, error=str(exc)[:200])
                continue
            _give_up(ctx, job.workload_id, exc, "its container could not be started")
    return started


def _start(ctx: ServiceContext, job: ReplicaJob, fence: LeaseFence | None) -> int:
    try:
        handle = ctx.runtimes.for_kind(job.kind).start(job)
    except RuntimeUnreachable as exc:
        log.info("start_deferred", workload_id=job.workload_id, error=exc.detail)
        return 0
    except (RuntimeFailure, NotFound) as exc:
        _record_failure(ctx, job, exc, fence)
        return 0
    return record_started(ctx, job, handle, "started", fence=fence)


def _give_up(ctx: ServiceContext, workload_id: str, exc: Exception, what: str) -> None:
    """Log once and fail the workload (its reservation released, any container it has
    torn down), so that the replica does not come back every tick."""
    report_item_failure(_LOOP, workload_id, exc, what)
    reason = failure_reason(f"{what} by the starter", exc)
    fail_workload(ctx, workload_id, reason, loop=_LOOP, expect=HOLDS_RESOURCES)


def _replicas_to_start(
    ctx: ServiceContext, unbuildable: list[tuple[AllocationRow, Exception]]
) -> list[ReplicaJob]:
    with ctx.db.read() as session:
        kinds = ctx.runtimes.kinds_where(runs_containers)
        servers = servers_of_kinds(session, kinds, ["online", "draining"])
        if not servers:
            return []
        allocations = container_store.allocations_without_container(
            session, servers, _HOLDING, BATCH
        )
        # A workload whose old container on that server still waits for teardown would be
        # handed that container back (the agent's create is idempotent per workload and
        # replica): start it once the cleanup loop has removed the old one.
        tearing_down = container_store.teardown_pairs(session)
        ready = [a for a in allocations if (a.server_id, a.workload_id) not in tearing_down]
        return load_replica_jobs(session, ready, unbuildable) if ready else []


def record_started(
    ctx: ServiceContext,
    job: ReplicaJob,
    handle: str,
    how: str,
    what_happened: str = "",
    *,
    fence: LeaseFence | None = None,
) -> int:
    """Record ``handle`` on the job's allocation if it is still the one we saw; else the
    container has no reservation any more and goes to the cleanup loop. Returns 1 when
    recorded. With a ``fence``, nothing is written once its lease moved on (:class:`Fenced`
    is raised: the new holder records the container, which the agent's idempotent create
    hands it again)."""
    now = ctx.now()
    try:
        with ctx.db.write() as session:
            check_fences(session, (fence,))
            if not container_store.set_container(
                session, job.allocation_id, job.container_id, handle
            ):
                if session.get(AllocationRow, job.allocation_id) is None:
                    record_teardown(session, handle, job.server_id, job.workload_id, "released")
                return 0
            workload = session.get(WorkloadRow, job.workload_id, populate_existing=True)
            if workload is None:
                return 0
            session.refresh(workload, ["allocations"])
            observed = ctx.runtimes.for_kind(job.kind).running_when_observed
            _advance(session, workload, job, how, now, what_happened, observed)
    except StaleDataError:
        return 0  # the workload changed meanwhile; the next tick looks again
    return 1


def _advance(
    session: Session,
    workload: WorkloadRow,
    job: ReplicaJob,
    how: str,
    now: datetime,
    what_happened: str = "",
    running_when_observed: bool = False,
) -> None:
    """Move the workload on once every replica has a container (or note a recreation);
    a runtime whose replicas run later (``running_when_observed``: pods) leaves it
    ``starting``, for the reconcile loop to move on when it sees them running."""
    status = WorkloadStatus(workload.status)
    if how == "recreated":
        record_change(
            session,
            workload,
            f"container of replica {job.replica} on {job.server_name} "
            f"{what_happened or 'vanished'}; recreated from its recorded spec",
            now,
            {"server": job.server_name, "replica": job.replica},
        )
        return
    if status not in (WorkloadStatus.SCHEDULED, WorkloadStatus.STARTING):
        return
    if any(a.container_id is None for a in workload.allocations):
        if status is WorkloadStatus.SCHEDULED:
            transition_workload(
                session, workload, WorkloadStatus.STARTING, f"starting on {job.server_name}", now
            )
        return
    if status is WorkloadStatus.SCHEDULED:
        transition_workload(
            session, workload, WorkloadStatus.STARTING, f"starting on {job.server_name}", now
        )
    if running_when_observed:
        return
    transition_workload(
        session,
        workload,
        WorkloadStatus.RUNNING,
        f"running on {job.server_name}",
        now,
        details={"container": job.replica, "server": job.server_name},
    )


def _record_failure(
    ctx: ServiceContext,
    job: ReplicaJob,
    exc: RuntimeFailure | NotFound,
    fence: LeaseFence | None = None,
) -> None:
    """A definitive refusal fails the workload with the agent's problem; a server without
    an agent any more sends it back to the queue."""
    now = ctx.now()
    try:
        with ctx.db.write() as session:
            check_fences(session, (fence,))
            allocation = session.get(AllocationRow, job.allocation_id, populate_existing=True)
            if allocation is None or allocation.container_id is not None:
                return  # a stale failure: that placement is gone (or has its container)
            workload = session.get(WorkloadRow, job.workload_id, populate_existing=True)
            if workload is None or WorkloadStatus(workload.status) not in HOLDS_RESOURCES:
                return
            release_workload(session, workload, reason="start failed")
            if isinstance(exc, NotFound):
                transition_workload(
                    session,
                    workload,
                    WorkloadStatus.PENDING,
                    f"server {job.server_name} has no agent any more; re-queued",
                    now,
                )
                return
            transition_workload(
                session,
                workload,
                WorkloadStatus.FAILED,
                f"container start failed on {job.server_name}: {exc.detail}",
                now,
                details={"status": exc.status, "title": exc.title, "errors": exc.errors},
            )
    except StaleDataError:
        return
    ctx.scheduler_wakeup.notify()
