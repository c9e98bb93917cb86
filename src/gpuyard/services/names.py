"""Display names for ids in responses, looked up in one query per kind (no N+1)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from gpuyard.services.context import ServiceContext
from gpuyard.store.fleet_tables import ServerRow
from gpuyard.store.identity_tables import UserRow
from gpuyard.store.workload_tables import WorkloadRow


@dataclass(frozen=True)
class DisplayNames:
    users: dict[str, str]
    servers: dict[str, str]


def names_for_workloads(ctx: ServiceContext, rows: Iterable[WorkloadRow]) -> DisplayNames:
    rows = list(rows)
    user_ids = {r.owner_id for r in rows}
    server_ids = {a.server_id for r in rows for a in r.allocations}
    users: dict[str, str] = {}
    servers: dict[str, str] = {}
    with ctx.db.read() as session:
        if user_ids:
            query = select(UserRow.id, UserRow.email).where(UserRow.id.in_(user_ids))
            users = {user_id: email for user_id, email in session.execute(query)}
        if server_ids:
            query = select(ServerRow.id, ServerRow.name).where(ServerRow.id.in_(server_ids))
            servers = {server_id: name for server_id, name in session.execute(query)}
    return DisplayNames(users=users, servers=servers)
