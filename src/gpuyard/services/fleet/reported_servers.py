"""Registering servers whose runtime reports their capacity (docker: through the agent).

The runtime of the cluster's kind asks the new server what it has BEFORE the transaction
opens (never a network call inside one); a server that does not answer, or refuses its
credentials, is a 422 naming the registration field at fault and nothing is written.
The runtime's secret (docker: the agent token) is stored encrypted and never returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.fleet_records import Cluster, Server
from gpuyard.domain.server_state import ServerStatus
from gpuyard.runtimes.base import Runtime
from gpuyard.services.context import ServiceContext
from gpuyard.services.fleet.clusters import ensure_server_name_free, joined_cluster
from gpuyard.services.identity.audit import SYSTEM_ACTOR, AuditActor, record_audit
from gpuyard.store.fleet import NewServer, add_server


@dataclass
class ReportedServerSpec:
    name: str
    cluster_id: str
    #: The runtime's connection fields, by name (``Runtime.connection_fields``).
    connection: Mapping[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    #: This server's own host port range (overrides the per-image-type ranges).
    host_ports: tuple[int, int] | None = None


def reporting_runtime(ctx: ServiceContext, cluster: Cluster) -> Runtime:
    """The runtime of ``cluster``'s kind, which must report its servers' capacity; 422 on
    ``cluster_id`` when its servers declare their capacity instead."""
    runtime = ctx.runtimes.get(cluster.kind)
    if runtime is None or not runtime.reports_inventory:
        raise InvalidInput.for_field(
            "cluster_id",
            f"cluster {cluster.name!r} is a {cluster.kind} cluster, whose servers do not "
            "report their capacity",
        )
    return runtime


def create_reported_server(
    ctx: ServiceContext, caller: Caller | None, spec: ReportedServerSpec, runtime: Runtime
) -> Server:
    """Register (``caller`` None: the system, for the local server) a server whose runtime
    reports what it has: ``runtime``, of its cluster's kind (``reporting_runtime``)."""
    reached = runtime.reach(spec.cluster_id, spec.connection)  # outside any transaction
    endpoint, inventory = reached.endpoint, reached.inventory
    now = ctx.now()
    with ctx.db.write() as session:
        joined_cluster(session, spec.cluster_id)  # still there, and kept until the commit
        ensure_server_name_free(session, spec.name)
        new = NewServer(
            spec.name,
            spec.cluster_id,
            ServerStatus.ONLINE.value,
            dict(spec.labels),
            address=endpoint.address,
            secret_enc=ctx.secret_box.encrypt(endpoint.secret) if endpoint.secret else None,
            host_ports=spec.host_ports,
            seen=True,
            trust=endpoint.trust,
        )
        server = add_server(session, new, inventory.capacity, inventory.server_gpus(), now)
        actor = AuditActor.of(caller) if caller else SYSTEM_ACTOR
        details = {
            "name": server.name,
            "cluster_id": server.cluster_id,
            # Named as the API names them (the server's agent_url): unchanged for docker.
            "agent_url": server.agent_url,
            "agent": inventory.reported_name,
            "cpu_milli": server.cpu_milli,
            "ram_mib": server.ram_mib,
            "gpus": len(inventory.gpus),
        }
        record_audit(session, actor, "server.create", "server", server.id, now, details)
    ctx.scheduler_wakeup.notify()
    return server
