"""The kube-nodes loop: a kubernetes cluster's nodes become gpuyard servers.

Each tick, per kubernetes cluster, outside any transaction, the kubernetes runtime says
the cluster's nodes with what gpuyard may place on each (allocatable less the requests of
pods gpuyard did not create), kept by list then watch (resourceVersion kept, a list again
on 410 Gone, backoff on errors: ``KubernetesRuntime.cluster_nodes``); then one short write
per node:

- a node gpuyard does not know becomes a server of that cluster (name = node name,
  capacity and GPUs from its inventory), online or, when it takes no new work, draining;
- a known one gets its capacity and GPUs brought to the report (never below what is
  reserved there), and its schedulability: cordoned or NotReady -> ``draining`` with that
  reason; schedulable again -> ``online``, but only when the loop drained it (an admin's
  drain or maintenance is left alone);
- a server of the cluster whose node is gone -> ``offline``, its workloads re-queued (as
  the health loop does for a server that stops answering).

A cluster whose API server does not answer is skipped: the health loop counts its
servers' missed probes and marks them offline. One cluster or node never stops the
others (``services/loops/item_failures.py``). A node whose name a server of another
cluster already has is reported and skipped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gpuyard.domain.errors import Conflict, NotFound
from gpuyard.domain.server_state import ClusterKind, ServerStatus
from gpuyard.domain.text import renderable
from gpuyard.domain.workload_state import HOLDS_RESOURCES
from gpuyard.log import get_logger
from gpuyard.runtimes.base import RuntimeFailure
from gpuyard.runtimes.kubernetes import KubeNode, KubernetesRuntime
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import joined_cluster
from gpuyard.services.fleet.health import requeue_workloads_of
from gpuyard.services.fleet.server_status import change_server_status
from gpuyard.services.identity.audit import SYSTEM_ACTOR, record_audit
from gpuyard.services.loops.item_failures import (
    fail_workload,
    failure_reason,
    report_item_failure,
)
from gpuyard.store import fleet
from gpuyard.store.server_events import last_server_event

log = get_logger(__name__)
_LOOP = "kube-nodes"
#: The key of the details of a status change this loop made (so that it undoes only its
#: own drains).
NODE_DETAIL = "kubernetes_node"


def sync_kube_nodes(ctx: ServiceContext) -> None:
    """One tick of the kube-nodes loop, cluster by cluster."""
    runtime = ctx.runtimes.get(ClusterKind.KUBERNETES)
    if not isinstance(runtime, KubernetesRuntime):
        return
    with ctx.db.read() as session:
        cluster_ids = fleet.cluster_ids_of_kind(session, ClusterKind.KUBERNETES.value)
    # Each cluster's nodes and pods are watched for a share of the interval, one cluster
    # after another (a watch per cluster in threads of its own: when clusters are many).
    watch_s = min(ctx.settings.kube_sync_interval_s / 4, 5.0)
    for cluster_id in cluster_ids:
        try:
            nodes = runtime.cluster_nodes(cluster_id, watch_s)
        except (RuntimeFailure, NotFound) as exc:  # the health loop counts its misses
            log.info("kube_nodes_not_listed", cluster_id=cluster_id, error=str(exc)[:300])
            continue
        except Exception as exc:  # an answer that is not a node list
            report_item_failure(_LOOP, f"cluster {cluster_id}", exc, "nodes not listed")
            continue
        sync_cluster_nodes(ctx, cluster_id, nodes)


def sync_cluster_nodes(ctx: ServiceContext, cluster_id: str, nodes: list[KubeNode]) -> None:
    """Apply one cluster's node list (see the module docstring). A node whose server
    already says what the node does is not written (one read for the whole cluster)."""
    changed = False
    with ctx.db.read() as session:
        stale = {node.name for node in nodes if _differs(session, node)}
    for node in nodes:
        if node.name not in stale:
            continue
        try:
            changed |= _apply_node(ctx, cluster_id, node)
        except Exception as exc:  # this node only; the others are applied
            report_item_failure(_LOOP, f"node {node.name}", exc, "node not applied")
    listed = {node.name for node in nodes}
    with ctx.db.read() as session:
        servers = fleet.servers_in_cluster(session, cluster_id)
    for name, server in servers.items():
        if name in listed or server.status not in _TAKING_WORK:
            continue
        try:
            changed |= _node_gone(ctx, server.id)
        except Exception as exc:
            report_item_failure(_LOOP, f"server {server.id}", exc, "gone node not applied")
    if changed:
        ctx.scheduler_wakeup.notify()


_TAKING_WORK = (ServerStatus.ONLINE.value, ServerStatus.DRAINING.value)


def _differs(session: Session, node: KubeNode) -> bool:
    """Whether the node's server is missing or says other than the node (capacity, kept
    at its reservations; GPUs; whether it takes new work)."""
    row = fleet.server_row_named(session, node.name)
    if row is None:
        return True
    want = node.inventory.capacity
    stored = (row.cpu_milli, row.ram_mib, row.storage_mib)
    wanted = (
        max(want.cpu_milli, row.alloc_cpu_milli),
        max(want.ram_mib, row.alloc_ram_mib),
        max(want.storage_mib, row.alloc_storage_mib),
    )
    gpus = [(g.gpu_index, g.model, g.memory_mib) for g in row.gpus]
    reported = [(g.index, g.model, g.memory_mib) for g in node.inventory.gpus]
    status = ServerStatus(row.status)
    drain = node.unschedulable is not None and status is ServerStatus.ONLINE
    undrain = node.unschedulable is None and status is ServerStatus.DRAINING
    return stored != wanted or gpus != reported or drain or undrain


def _apply_node(ctx: ServiceContext, cluster_id: str, node: KubeNode) -> bool:
    """Create or update the node's server; True when the scheduler should look again."""
    now = ctx.now()
    inventory = node.inventory
    with ctx.db.write() as session:
        joined_cluster(session, cluster_id)  # still there, and kept until the commit
        row = fleet.server_row_named(session, node.name)
        if row is None:
            new = fleet.NewServer(node.name, cluster_id, ServerStatus.ONLINE.value, {}, seen=True)
            server = fleet.add_server(
                session, new, inventory.capacity, inventory.server_gpus(), now
            )
            details = {
                "name": server.name,
                "cluster_id": cluster_id,
                "node": node.name,
                "cpu_milli": server.cpu_milli,
                "ram_mib": server.ram_mib,
                "gpus": len(inventory.gpus),
            }
            record_audit(session, SYSTEM_ACTOR, "server.create", "server", server.id, now, details)
            record = fleet.server_status_record(session, server.id)
            assert record is not None
            _follow_schedulability(session, record, node, now)
            return True
        if row.cluster_id != cluster_id:
            raise Conflict(
                f"node {renderable(node.name)}: a server of another cluster has its name"
            )
        changed = fleet.set_server_capacity(
            session, row.id, inventory.capacity, inventory.server_gpus()
        )
        record = fleet.server_status_record(session, row.id)
        assert record is not None
        return _follow_schedulability(session, record, node, now) or changed


def _follow_schedulability(
    session: Session, server: fleet.ServerStatusRecord, node: KubeNode, now: datetime
) -> bool:
    """Drain the server of a node that takes no new work; undrain it (only a drain of
    this loop's) when it does again. True when its status changed."""
    status = ServerStatus(server.status)
    if node.unschedulable is not None:
        if status is not ServerStatus.ONLINE:
            return False
        details = {NODE_DETAIL: node.unschedulable}
        return change_server_status(
            session, server, ServerStatus.DRAINING, node.unschedulable, SYSTEM_ACTOR, now, details
        )
    if status is not ServerStatus.DRAINING:
        return False
    last = last_server_event(session, server.id)
    if last is None or last.to_status != ServerStatus.DRAINING.value:
        return False
    if NODE_DETAIL not in last.details:
        return False  # an admin's drain
    details = {NODE_DETAIL: "schedulable"}
    return change_server_status(
        session, server, ServerStatus.ONLINE, "node schedulable again", SYSTEM_ACTOR, now, details
    )


def _node_gone(ctx: ServiceContext, server_id: str) -> bool:
    """The server's node left the cluster: offline, its workloads back to the queue."""
    now = ctx.now()
    stuck: list[tuple[str, Exception]] = []
    with ctx.db.write() as session:
        server = fleet.server_status_record(session, server_id)
        if server is None or server.status not in _TAKING_WORK:
            return False
        why = "node gone from the cluster"
        details = {NODE_DETAIL: "gone"}
        change_server_status(session, server, ServerStatus.OFFLINE, why, SYSTEM_ACTOR, now, details)
        lost = requeue_workloads_of(session, server, f"server {server.name}: {why}", now, stuck)
        record_audit(
            session,
            SYSTEM_ACTOR,
            "server.offline",
            "server",
            server.id,
            now,
            {"name": server.name, "reason": why, "lost": lost},
        )
    log.warning("kube_node_gone", server_id=server_id)
    for workload_id, exc in stuck:
        report_item_failure(_LOOP, workload_id, exc, "not re-queued from a gone node")
        reason = failure_reason("its node left the cluster and it could not be re-queued", exc)
        fail_workload(ctx, workload_id, reason, loop=_LOOP, expect=HOLDS_RESOURCES)
    return True
