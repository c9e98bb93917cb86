"""Display names for ids in responses, looked up in one query per kind (no N+1)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select

from gpuyard.services.context import ServiceContext
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.runtime_tables import PortAllocationRow
from gpuyard.store.workload_tables import WorkloadRow


@dataclass(frozen=True)
class DisplayNames:
    users: dict[str, str]
    servers: dict[str, str]
    #: allocation id -> {container_port: host_port} (docker replicas).
    host_ports: dict[str, dict[int, int]] = field(default_factory=dict)
    #: server id -> the host name its agent is reached at (for port URLs).
    server_hosts: dict[str, str] = field(default_factory=dict)


def names_for_workloads(ctx: ServiceContext, rows: Iterable[WorkloadRow]) -> DisplayNames:
    rows = list(rows)
    user_ids = {r.owner_id for r in rows}
    server_ids = {a.server_id for r in rows for a in r.allocations}
    users: dict[str, str] = {}
    servers: dict[str, str] = {}
    hosts: dict[str, str] = {}
    host_ports: dict[str, dict[int, int]] = defaultdict(dict)
    allocation_ids = [a.id for r in rows if r.ports for a in r.allocations]
    with ctx.db.read() as session:
        if user_ids:
            query = select(UserRow.id, UserRow.email).where(UserRow.id.in_(user_ids))
            users = {user_id: email for user_id, email in session.execute(query)}
        if server_ids:
            server_query = select(ServerRow.id, ServerRow.name, ServerRow.agent_url).where(
                ServerRow.id.in_(server_ids)
            )
            for server_id, name, agent_url in session.execute(server_query):
                servers[server_id] = name
                if agent_url:
                    hosts[server_id] = urlsplit(agent_url).hostname or ""
        if allocation_ids:  # only workloads that publish ports: one query
            p = PortAllocationRow
            port_query = select(p.allocation_id, p.container_port, p.host_port).where(
                p.allocation_id.in_(allocation_ids)
            )
            for allocation_id, container_port, host_port in session.execute(port_query):
                host_ports[allocation_id][container_port] = host_port
    return DisplayNames(
        users=users, servers=servers, host_ports=dict(host_ports), server_hosts=hosts
    )
