"""The health loop: probes every server whose runtime reports an inventory (docker: its
agent), counts misses, marks a server offline after N consecutive misses (its workloads
go lost and back to the queue, their reservations released) and online again when it
answers; refreshes GPU utilization.

Probes run outside any transaction, in parallel; each server's result is applied in its
own short transaction. Servers in maintenance are probed but never marked offline.

One server never stops the others: a probe that fails in a way no agent should (an answer
that is not an inventory) counts as a miss, and a result that cannot be applied is logged
once and skipped; a workload that cannot be re-queued from a lost server is failed with a
reason (``services/loops/item_failures.py``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.domain.errors import NotFound
from gpuyard.domain.runtime_records import HostInventory
from gpuyard.domain.server_state import ServerStatus
from gpuyard.domain.text import renderable
from gpuyard.domain.workload_state import HOLDS_RESOURCES, WorkloadStatus
from gpuyard.log import get_logger
from gpuyard.runtimes.base import RuntimeFailure
from gpuyard.runtimes.registry import reports_inventory
from gpuyard.services.containers.replica_specs import RuntimeServer, servers_of_kinds
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.server_status import change_server_status
from gpuyard.services.identity.audit import SYSTEM_ACTOR, record_audit
from gpuyard.services.loops.item_failures import (
    blames_item,
    fail_workload,
    failure_reason,
    report_item_failure,
)
from gpuyard.services.scheduling.allocations import release_workload
from gpuyard.services.usage.readings import record_probe_reading
from gpuyard.services.workloads.transitions import transition_workload
from gpuyard.store import fleet
from gpuyard.store import workloads as workload_store

log = get_logger(__name__)
_LOOP = "health"


def probe_servers(ctx: ServiceContext) -> None:
    """One tick of the health loop."""
    with ctx.db.read() as session:
        kinds = ctx.runtimes.kinds_where(reports_inventory)
        servers = servers_of_kinds(session, kinds, [s.value for s in ServerStatus])
    if not servers:
        return
    with ThreadPoolExecutor(max_workers=min(16, len(servers))) as pool:
        results = list(pool.map(lambda server: _probe(ctx, *server), servers.items()))
    for (server_id, server), inventory in zip(servers.items(), results, strict=True):
        try:
            apply_probe(ctx, server_id, inventory)
        except Exception as exc:  # this server's result only; the others are applied
            item = f"server {server_id}"
            report_item_failure(_LOOP, item, exc, "probe result not applied", server=server.name)


def _probe(ctx: ServiceContext, server_id: str, server: RuntimeServer) -> HostInventory | None:
    started = time.perf_counter()
    inventory = _ask_inventory(ctx, server_id, server)
    ctx.metrics.record_probe(inventory is not None, time.perf_counter() - started)
    return inventory


def _ask_inventory(
    ctx: ServiceContext, server_id: str, server: RuntimeServer
) -> HostInventory | None:
    server_name = server.name
    try:
        return ctx.runtimes.for_kind(server.kind).inventory(server_name, retry=False)
    except (RuntimeFailure, NotFound) as exc:
        log.info("probe_missed", server=server_name, error=str(exc))
        return None
    except Exception as exc:  # an answer that is not an inventory: a miss all the same
        item = f"server {server_id}"
        report_item_failure(_LOOP, item, exc, "probe failed", server=server_name)
        return None


def apply_probe(ctx: ServiceContext, server_id: str, inventory: HostInventory | None) -> None:
    """Record one probe's result for one server."""
    now = ctx.now()
    came_back = went_offline = False
    stuck: list[tuple[str, Exception]] = []
    with ctx.db.write() as session:
        server = fleet.server_status_record(session, server_id)
        if server is None:
            return
        if inventory is not None:
            fleet.record_probe_answered(session, server_id, now)
            _refresh_utilization(session, server_id, inventory)
            record_probe_reading(session, server_id, inventory.usage, now)
            if server.status == ServerStatus.OFFLINE.value:
                change_server_status(
                    session, server, ServerStatus.ONLINE, "answered its probe", SYSTEM_ACTOR, now
                )
                record_audit(
                    session,
                    SYSTEM_ACTOR,
                    "server.online",
                    "server",
                    server.id,
                    now,
                    {"name": server.name},
                )
                came_back = True
        else:
            missed = fleet.record_probe_missed(session, server)
            limit = ctx.settings.health_offline_after_misses
            if missed >= limit and server.status in (
                ServerStatus.ONLINE.value,
                ServerStatus.DRAINING.value,
            ):
                why = f"{missed} missed probes"
                details = {"missed_probes": missed}
                change_server_status(
                    session, server, ServerStatus.OFFLINE, why, SYSTEM_ACTOR, now, details
                )
                offline = f"server {renderable(server.name)} offline ({missed} missed probes)"
                lost = requeue_workloads_of(session, server, offline, now, stuck)
                record_audit(
                    session,
                    SYSTEM_ACTOR,
                    "server.offline",
                    "server",
                    server.id,
                    now,
                    {"name": server.name, "missed_probes": missed, "lost": lost},
                )
                went_offline = True
    if came_back:
        log.info("server_online", server_id=server_id)
        ctx.reconcile_wakeup.notify()
        ctx.scheduler_wakeup.notify()
    if went_offline:
        log.warning("server_offline", server_id=server_id)
        ctx.scheduler_wakeup.notify()
    for workload_id, exc in stuck:
        report_item_failure(_LOOP, workload_id, exc, "not re-queued from a lost server")
        reason = failure_reason("its server went offline and it could not be re-queued", exc)
        fail_workload(ctx, workload_id, reason, loop=_LOOP, expect=HOLDS_RESOURCES)


def _refresh_utilization(session: Session, server_id: str, inventory: HostInventory) -> None:
    for gpu in inventory.gpus:
        fleet.set_gpu_utilization(session, server_id, gpu.index, gpu.utilization_pct)


def requeue_workloads_of(
    session: Session,
    server: fleet.ServerStatusRecord,
    why: str,
    now: datetime,
    stuck: list[tuple[str, Exception]],
) -> list[str]:
    """The server's workloads go lost (``why``), give back every reservation, and return
    to the queue; those that cannot go to ``stuck``, with the error."""
    holding = [s.value for s in HOLDS_RESOURCES]
    workloads = workload_store.workloads_on_server(session, server.id, holding)
    requeued = []
    for workload in workloads:
        try:
            with session.begin_nested():  # one that cannot be re-queued stays behind alone
                release_workload(session, workload, reason="server offline")
                transition_workload(session, workload, WorkloadStatus.LOST, why, now)
                transition_workload(
                    session,
                    workload,
                    WorkloadStatus.PENDING,
                    f"re-queued: {why}",
                    now,
                    reason_code="lost",
                )
        except Exception as exc:
            if not blames_item(exc):
                raise
            stuck.append((workload.id, exc))
            continue
        requeued.append(workload.id)
    return requeued
