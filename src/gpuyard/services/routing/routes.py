"""Which routes exist: one per published port of replica 0 of each running workload whose
runtime publishes ports on a host (docker), read in one short transaction."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Final

from gpuyard.domain.routing import Route, RouteKey, is_ip_address, is_upstream_host, user_segment
from gpuyard.log import get_logger
from gpuyard.services.context import ServiceContext
from gpuyard.services.names import names_for_workloads
from gpuyard.store.workloads import owner_usernames, running_with_ports

log = get_logger(__name__)

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
    return resolve_upstreams(routes)


def resolve_upstreams(routes: list[Route]) -> list[Route]:
    """``routes`` with each upstream host name replaced by its first address (once per
    name): nginx would resolve them at load time, where one that fails fails the whole
    config. A route whose host does not resolve is left out (logged); addresses and
    malformed names pass through unchanged (the renderer refuses the latter)."""
    resolved: dict[str, str | None] = {}
    kept: list[Route] = []
    for route in routes:
        host = route.upstream_host
        if is_ip_address(host) or not is_upstream_host(host):
            kept.append(route)
            continue
        if host not in resolved:
            resolved[host] = _first_address(host)
            if resolved[host] is None:
                log.warning("route host does not resolve", host=host)
        address = resolved[host]
        if address is not None:
            kept.append(replace(route, upstream_host=address))
    return kept


def _first_address(host: str) -> str | None:
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    return str(found[0][4][0]) if found else None
