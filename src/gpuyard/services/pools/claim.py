"""The claim on launch: a submission whose image and resources match a pool with an
available warm container takes that container instead of queueing (issue 16).

Runs inside the submissions' group commit (``services/workloads/submission.py``), in
the transaction that would have inserted the workload. Candidates are read without a
lock; each is taken by the workload version's compare-and-set
(``store.pools.claim_warm``: ``WHERE version = seen AND pool_state = 'available' AND
status = 'running'``), so two launches, in one batch or in two processes, never get the
same container: the loser's UPDATE matches no row and it tries the next candidate, or
falls back to a cold start. The warm workload row becomes the caller's workload (owner,
team, name, priority, preemptible) and answers ``running`` with ``from_pool``.

Relabelling the container (Docker labels are fixed) happens after the commit, outside
any transaction (:func:`relabel_claimed`), and the pool loop converges labels anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.auth.caller import Caller
from gpuyard.domain.pools import LaunchShape, PoolState, container_labels, launch_matches
from gpuyard.domain.workload_records import Workload
from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.services.workloads.transitions import record_change
from gpuyard.store import pools as pool_store
from gpuyard.store.fleet import server_names_and_kinds
from gpuyard.store.identity_tables import TeamRow
from gpuyard.store.workload_tables import WorkloadRow
from gpuyard.store.workloads import workload_record

log = get_logger(__name__)
#: Candidates read per claim: losing this many races in a row means a cold start.
CANDIDATES = 16


def _launch(workload: Workload) -> LaunchShape:
    return LaunchShape(
        image=workload.image,
        request=workload.request,
        command=workload.command,
        env=workload.env,
        ports=workload.ports,
        gpu_model=workload.gpu_model,
        cluster_id=workload.cluster_id,
        replicas=workload.replicas,
        gang=workload.gang,
        node_selector=workload.node_selector,
        duration_s=workload.duration_s,
        files_path=workload.files_path,
    )


def _quota_bound(session: Session, team_id: str | None) -> bool:
    """A launch counted against a team with a quota goes through the scheduler, the one
    place that checks quotas (a cold start)."""
    if team_id is None:
        return False
    team = session.get(TeamRow, team_id)
    return team is not None and (
        team.quota_cpu_milli is not None
        or team.quota_ram_mib is not None
        or team.quota_gpu_milli is not None
    )


def claim_warm_container(
    session: Session, caller: Caller, workload: Workload, now: datetime
) -> Workload | None:
    """Hand an available warm container matching ``workload`` (a valid submission, its
    team resolved) to the caller; the workload as it now is, or None (cold start)."""
    launch = _launch(workload)
    if launch.replicas != 1 or launch.gang or _quota_bound(session, workload.team_id):
        return None
    candidates = pool_store.warm_candidates(session, workload.image, workload.request, CANDIDATES)
    if not candidates:
        return None
    pools = {}
    for candidate in candidates:
        if candidate.pool_id not in pools:
            pool_row = pool_store.pool_row(session, candidate.pool_id)
            if pool_row is None:
                continue
            pools[candidate.pool_id] = pool_store.pool_record(pool_row)
        pool = pools[candidate.pool_id]
        if not launch_matches(candidate.shape, launch, candidate.cluster_id):
            continue
        values = {
            "owner_id": caller.user_id,
            "team_id": workload.team_id,
            "name": workload.name,
            "priority": workload.priority,
            "preemptible": workload.preemptible,
            # The claimer's own choice of readable keys (a warm container has none).
            "plain_env_keys": list(workload.plain_env_keys),
            # Counted from the warm container's start (services/culling).
            "max_lifetime_s": workload.max_lifetime_s,
            "reason": f"running: warm container of pool {pool.name}",
            "updated_at": now,
        }
        if not pool_store.claim_warm(session, candidate, values):
            continue  # another launch took it first: the next one
        row = session.get(WorkloadRow, candidate.workload_id, populate_existing=True)
        assert row is not None  # just updated in this transaction
        record_change(
            session,
            row,
            f"claimed from pool {pool.name} by {caller.email} (warm start)",
            now,
            {"pool_id": pool.id, "pool_index": row.pool_index, "from_pool": True},
        )
        return workload_record(row)
    return None


def relabel_claimed(ctx: ServiceContext, workload: Workload) -> None:
    """Best effort, after the commit: tell the runtime the warm container now belongs to
    its new owner (``status=assigned``, ``user_id``). A failure is left to the pool loop,
    which compares labels every tick. Nothing raised here reaches the caller: the claim
    has committed, so the launch succeeded whatever the runtime answers (a container gone
    meanwhile, a refusal, a transport error)."""
    try:
        with ctx.db.read() as session:
            target = _relabel_target(session, workload.id)
        if target is None:
            return
        kind, handle, labels = target
        ctx.runtimes.for_kind(kind).relabel(handle, labels)
    except Exception as exc:  # the pool loop relabels anyway
        log.info(
            "pool_relabel_deferred",
            workload_id=workload.id,
            error_type=type(exc).__name__,
            error=str(exc)[:200],
        )


def _relabel_target(session: Session, workload_id: str) -> tuple[str, str, dict[str, str]] | None:
    row = session.get(WorkloadRow, workload_id)
    if row is None or row.pool_id is None or row.pool_state is None:
        return None
    allocation = next((a for a in row.allocations if a.replica == 0), None)
    if allocation is None or allocation.container_id is None:
        return None
    types = pool_store.pool_types(session, [row.pool_id])
    kind = server_names_and_kinds(session, {allocation.server_id})[allocation.server_id][1]
    return kind, allocation.container_id, expected_labels(row, types[row.pool_id])


def expected_labels(row: WorkloadRow, image_type: str) -> dict[str, str]:
    """The pool labels a warm container should carry as its row stands."""
    state = PoolState(row.pool_state or PoolState.AVAILABLE.value)
    user_id = row.owner_id if state is PoolState.ASSIGNED else None
    return container_labels(image_type, int(row.pool_index or 0), state, user_id)
