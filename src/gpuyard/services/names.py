"""Display names for ids in responses, looked up in one query per kind (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gpuyard.domain.routing import user_segment
from gpuyard.domain.runtime_records import ServerEndpoint
from gpuyard.domain.workload_records import Workload
from gpuyard.services.context import ServiceContext
from gpuyard.store.fleet import server_addresses
from gpuyard.store.workloads import host_ports, owner_emails, owner_usernames


@dataclass(frozen=True)
class DisplayNames:
    users: dict[str, str]
    servers: dict[str, str]
    #: allocation id -> {container_port: host_port} (docker replicas).
    host_ports: dict[str, dict[int, int]] = field(default_factory=dict)
    #: server id -> the host name its replicas' published ports are reached at (for port
    #: URLs; its runtime says which: docker, the agent's host).
    server_hosts: dict[str, str] = field(default_factory=dict)
    #: Per-user routing (services/routing), None when it is off: the base URL of routes
    #: ("" without GPUYARD_ROUTING_PUBLIC_URL) and each owner's segment of a route's path.
    route_base: str | None = None
    route_users: dict[str, str] = field(default_factory=dict)


def names_for_workloads(ctx: ServiceContext, workloads: Iterable[Workload]) -> DisplayNames:
    """Owners' emails, servers' names and hosts, and host ports of ``workloads``."""
    workloads = list(workloads)
    user_ids = {w.owner_id for w in workloads}
    server_ids = {p.server_id for w in workloads for p in w.placements}
    users: dict[str, str] = {}
    servers: dict[str, str] = {}
    hosts: dict[str, str] = {}
    ports: dict[str, dict[int, int]] = {}
    allocation_ids = [p.allocation_id for w in workloads if w.ports for p in w.placements]
    with ctx.db.read() as session:
        if user_ids:
            users = owner_emails(session, user_ids)
        if server_ids:
            for server in server_addresses(session, server_ids):
                servers[server.server_id] = server.name
                runtime = ctx.runtimes.get(server.kind)
                host = runtime.ports_host(ServerEndpoint(server.address)) if runtime else None
                if host is not None:
                    hosts[server.server_id] = host
        if allocation_ids:  # only workloads that publish ports: one query
            ports = host_ports(session, allocation_ids)
        routing = ctx.settings.routing_nginx_conf is not None
        route_users: dict[str, str] = {}
        if routing and allocation_ids:
            owners = {w.owner_id for w in workloads if w.ports}
            named = owner_usernames(session, owners)
            route_users = {uid: user_segment(named.get(uid), uid) for uid in owners}
    return DisplayNames(
        users=users,
        servers=servers,
        host_ports=ports,
        server_hosts=hosts,
        route_base=(ctx.settings.routing_public_url or "") if routing else None,
        route_users=route_users,
    )
