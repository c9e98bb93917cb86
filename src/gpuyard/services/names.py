"""Display names for ids in responses, looked up in one query per kind (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gpuyard.domain.workload_records import Workload
from gpuyard.services.context import ServiceContext
from gpuyard.store.fleet import server_names_and_hosts
from gpuyard.store.workloads import host_ports, owner_emails


@dataclass(frozen=True)
class DisplayNames:
    users: dict[str, str]
    servers: dict[str, str]
    #: allocation id -> {container_port: host_port} (docker replicas).
    host_ports: dict[str, dict[int, int]] = field(default_factory=dict)
    #: server id -> the host name its agent is reached at (for port URLs).
    server_hosts: dict[str, str] = field(default_factory=dict)


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
            for server_id, name, agent_url in server_names_and_hosts(session, server_ids):
                servers[server_id] = name
                if agent_url:
                    hosts[server_id] = urlsplit(agent_url).hostname or ""
        if allocation_ids:  # only workloads that publish ports: one query
            ports = host_ports(session, allocation_ids)
    return DisplayNames(users=users, servers=servers, host_ports=ports, server_hosts=hosts)
