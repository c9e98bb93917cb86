"""The pool loop: keep every pool at its target size, and its containers' labels in line
with who holds them.

One tick:

1. One short write transaction per pool: count its available warm containers that are
   not finished (queued, starting or running); insert the missing ones as new workloads
   (pending, owned by the pools' system owner, priority ``POOL_PRIORITY``, preemptible,
   the next free pool indices), or stop the surplus (not-yet-running first, then the
   highest indices); available ones on a server that accepts no new work (draining,
   maintenance, offline) stop too, and are replaced. The scheduler places them like any
   workload and the starter starts them; nothing here talks to a runtime inside a
   transaction. After warm containers of a pool failed, refilling it waits: 5 s after
   the last failure, doubled per failure in a row, at most 5 min (``PoolFailures``; the
   pool's status shows it), so a spec that cannot start fails one container now and
   then rather than one every tick.
2. Recovery needs nothing of its own: a warm container that failed, stopped or was
   preempted ends its workload, and step 1 replaces it; one that vanished or was killed
   from outside, available or assigned, is recreated from its recorded spec by the
   reconcile loop's recovery (``services/containers/reconcile.py``), with its files
   directory (per workload id) mounted again and an event saying so.
3. Outside any transaction, per server with warm containers: list its containers and
   relabel those whose ``status`` / ``user_id`` labels differ from their row (the claim
   relabels at once; this catches a relabel that failed, and a release).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gpuyard.domain.errors import NotFound
from gpuyard.domain.pools import (
    FAILURE_WINDOW_S,
    MUTABLE_LABELS,
    POOL_OWNER_ID,
    POOL_PRIORITY,
    SERVER_NAME_SELECTOR,
    PoolMember,
    PoolSpec,
    PoolState,
    free_indices,
    warm_name,
)
from gpuyard.domain.server_state import ServerStatus, accepts_new_work
from gpuyard.domain.workload_records import Workload
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.runtimes.base import RuntimeFailure
from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.containers.replica_specs import servers_of_kinds
from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.item_failures import report_item_failure
from gpuyard.services.pools.claim import expected_labels
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.workloads.transitions import submission_event, transition_workload
from gpuyard.store import pools as pool_store
from gpuyard.store.base import new_id
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.workloads import insert_workloads

log = get_logger(__name__)
_LOOP = "pools"


def tend_pools(ctx: ServiceContext) -> int:
    """One tick; returns how many warm containers were queued or stopped."""
    with ctx.db.read() as session:
        pool_ids = [row.id for row in pool_store.pool_rows(session)]
    changed = 0
    for pool_id in pool_ids:
        try:
            changed += _tend(ctx, pool_id)
        except Exception as exc:  # one pool's trouble never stops the others
            report_item_failure(_LOOP, f"pool {pool_id}", exc, "not refilled")
    try:
        changed += _stop_orphans(ctx)
    except Exception as exc:
        report_item_failure(_LOOP, "orphaned warm containers", exc, "not stopped")
    if changed:
        ctx.scheduler_wakeup.notify()
    try:
        sync_labels(ctx)
    except Exception as exc:
        report_item_failure(_LOOP, "labels", exc, "labels not synced")
    return changed


def _stop_orphans(ctx: ServiceContext) -> int:
    """Stop available warm containers whose pool is gone (left by a delete before pools
    took their members along): no one would ever claim or stop them."""
    with ctx.db.read() as session:  # no write transaction each tick for nothing
        if not pool_store.orphaned_available(session):
            return 0
    now = ctx.now()
    with ctx.db.write() as session:
        orphans = pool_store.orphaned_available(session)
        for row in orphans:
            release_workload(session, row, reason="pool")
            transition_workload(
                session, row, WorkloadStatus.STOPPED, "warm container of a deleted pool", now
            )
        return len(orphans)


def _tend(ctx: ServiceContext, pool_id: str) -> int:
    now = ctx.now()
    with ctx.db.write() as session:
        row = pool_store.pool_row(session, pool_id, lock=True)
        if row is None:
            return 0
        pool = pool_store.pool_record(row)
        members = pool_store.active_members(session, [pool_id])[pool_id]
        available = [m for m in members if m.state is PoolState.AVAILABLE]
        # A draining, maintenance or offline server keeps no warm containers: they would
        # hold its capacity forever (a drain would never empty it). They stop; their
        # replacements go where the scheduler still places work.
        closed = _on_closed_servers(session, available)
        if closed:
            _stop(session, pool_id, closed, now)
            available = [m for m in available if m.workload_id not in closed]
        missing = pool.target_size - len(available)
        if missing > 0 and _backing_off(session, pool_id, now):
            return len(closed)
        if missing > 0:
            pool_store.ensure_pool_owner(session)
            taken = {m.pool_index for m in members}
            warm = [
                _warm_workload(session, pool, index, now) for index in free_indices(taken, missing)
            ]
            insert_workloads(session, warm, [submission_event(w.id, now) for w in warm])
            return len(closed) + len(warm)
        if missing < 0:
            # Surplus: those not running yet first, then the highest indices.
            reason = f"pool {pool.name} resized to {pool.target_size}"
            doomed = {
                m.workload_id: reason for m in sorted(available, key=_surplus_order)[:-missing]
            }
            _stop(session, pool_id, doomed, now)
            return len(closed) + len(doomed)
    return len(closed)


def _backing_off(session: Session, pool_id: str, now: datetime) -> bool:
    """Whether the pool's latest warm containers failed recently enough that refilling
    waits (doubling per failure in a row, bounded: domain ``PoolFailures``), so that a
    spec that cannot start does not insert and fail a container every tick."""
    since = now - timedelta(seconds=FAILURE_WINDOW_S)
    failures = pool_store.failure_streaks(session, [pool_id], since).get(pool_id)
    return failures is not None and now < failures.refill_at()


def _on_closed_servers(session: Session, available: list[PoolMember]) -> dict[str, str]:
    """workload id -> why it stops, for the available members placed on servers that do
    not accept new work."""
    statuses = pool_store.server_statuses(
        session, [m.server_id for m in available if m.server_id is not None]
    )
    return {
        m.workload_id: f"server is {statuses[m.server_id]}: warm containers leave it"
        for m in available
        if m.server_id in statuses and not accepts_new_work(ServerStatus(statuses[m.server_id]))
    }


def _stop(session: Session, pool_id: str, reasons: dict[str, str], now: datetime) -> None:
    for member in pool_store.member_rows(session, pool_id):
        if member.id in reasons:
            release_workload(session, member, reason="pool")
            transition_workload(session, member, WorkloadStatus.STOPPED, reasons[member.id], now)


def _surplus_order(member: PoolMember) -> tuple[bool, int]:
    return (member.status == WorkloadStatus.RUNNING.value, -member.pool_index)


def _warm_workload(session: Session, pool: PoolSpec, index: int, now: datetime) -> Workload:
    """A new warm container of ``pool`` at ``index``, as a workload to insert."""
    cluster_id = pool.cluster_id
    selector: dict[str, str] = {}
    if pool.server_id is not None:
        server = session.get(ServerRow, pool.server_id)
        if server is None:
            raise NotFound.for_object("server", pool.server_id)
        cluster_id = server.cluster_id
        selector = {SERVER_NAME_SELECTOR: server.name}
    return Workload(
        id=new_id(),
        name=warm_name(pool.image_type, index),
        owner_id=POOL_OWNER_ID,
        team_id=None,
        cluster_id=cluster_id,
        status=WorkloadStatus.PENDING.value,
        reason=f"warm container of pool {pool.name}",
        reason_code=None,
        image=pool.image,
        command=list(pool.command) if pool.command is not None else None,
        env=dict(pool.env),
        plain_env_keys=(),  # a pool's env may hold secrets: masked to all but its owner
        ports=(pool.container_port,) if pool.container_port is not None else (),
        request=pool.request,
        gpu_model=None,
        priority=POOL_PRIORITY,
        preemptible=True,
        replicas=1,
        gang=False,
        node_selector=selector,
        duration_s=None,
        preemption_count=0,
        created_at=now,
        updated_at=now,
        started_at=None,
        finished_at=None,
        placements=(),
        pool_id=pool.id,
        pool_index=index,
        pool_state=PoolState.AVAILABLE.value,
        files_path=pool.files_path,
    )


def sync_labels(ctx: ServiceContext) -> int:
    """Relabel warm containers whose mutable labels differ from their rows; how many."""
    expected = _expected_by_server(ctx)
    relabelled = 0
    for (kind, server_name), wanted in expected.items():
        runtime = ctx.runtimes.for_kind(kind)
        try:
            observed = runtime.containers(server_name)
        except (RuntimeFailure, NotFound) as exc:
            log.info("pool_labels_skipped", server=server_name, error=str(exc)[:200])
            continue
        for container in observed:
            handle = runtime.handle_of(server_name, container.container_id)
            labels = wanted.get(handle)
            if labels is None:
                continue
            if all(container.labels.get(k) == labels[k] for k in MUTABLE_LABELS):
                continue
            try:
                runtime.relabel(handle, labels)
                relabelled += 1
            except (RuntimeFailure, NotFound) as exc:
                log.info("pool_relabel_deferred", handle=handle, error=str(exc)[:200])
    return relabelled


def _expected_by_server(
    ctx: ServiceContext,
) -> dict[tuple[str, str], dict[str, dict[str, str]]]:
    """(kind, server name) -> {container handle: the labels its row says}."""
    found: dict[tuple[str, str], dict[str, dict[str, str]]] = defaultdict(dict)
    with ctx.db.read() as session:
        kinds = ctx.runtimes.kinds_where(runs_containers)
        servers = servers_of_kinds(session, kinds, ["online", "draining"])
        if not servers:
            return found
        rows = pool_store.members_with_containers(session, list(servers))
        types = pool_store.pool_types(session, {r.pool_id for r in rows})
        for row in rows:
            if row.pool_id not in types:
                continue
            for allocation in row.allocations:
                server = servers.get(allocation.server_id)
                if server is None or allocation.container_id is None:
                    continue
                found[(server.kind, server.name)][allocation.container_id] = expected_labels(
                    row, types[row.pool_id]
                )
    return found
