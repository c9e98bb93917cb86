"""Which routes exist: one per published port of replica 0 of each running workload whose
runtime publishes ports on a host (docker), read in one short transaction."""

from __future__ import annotations

from typing import Final

from gpuyard.domain.routing import Route, RouteKey, user_segment
from gpuyard.services.context import ServiceContext
from gpuyard.services.names import names_for_workloads
from gpuyard.store.workloads import owner_usernames, running_with_ports

#: The most running workloads one config routes (each port is one nginx location).
MAX_ROUTED_WORKLOADS: Final = 5000


def routing_enabled(ctx: ServiceContext) -> bool:
    """Whether this deployment routes at all (GPUYARD_ROUTING_NGINX_CONF is set)."""
    return ctx.settings.routing_nginx_conf is not None


def route_url(ctx: ServiceContext, key: RouteKey) -> str:
    """What users open for ``key``: the public base URL and the route's path (the path
    alone without GPUYARD_ROUTING_PUBLIC_URL)."""
    return f"{ctx.settings.routing_public_url or ''}{key.path}"


def current_routes(ctx: ServiceContext) -> list[Route]:
    """The routes the running workloads call for now (an upstream per port: the server's
    ports host and the port allocated there)."""
    with ctx.db.read() as session:
        workloads = running_with_ports(session, MAX_ROUTED_WORKLOADS)
        usernames = owner_usernames(session, {w.owner_id for w in workloads})
    names = names_for_workloads(ctx, workloads)
    routes: list[Route] = []
    for workload in workloads:
        if not workload.placements:
            continue
        first = workload.placements[0]
        host = names.server_hosts.get(first.server_id)
        taken = names.host_ports.get(first.allocation_id, {})
        if not host:
            continue
        user = user_segment(usernames.get(workload.owner_id), workload.owner_id)
        for container_port in workload.ports:
            host_port = taken.get(int(container_port))
            if host_port:
                key = RouteKey(user, workload.id, int(container_port))
                routes.append(Route(key, host, host_port))
    return routes
