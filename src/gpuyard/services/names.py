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
    with ctx.db.read() as session:
        users = (
            dict(
                session.execute(
                    select(UserRow.id, UserRow.email).where(UserRow.id.in_(user_ids))
                ).tuples()
            )
            if user_ids
            else {}
        )
        servers = (
            dict(
                session.execute(
                    select(ServerRow.id, ServerRow.name).where(ServerRow.id.in_(server_ids))
                ).tuples()
            )
            if server_ids
            else {}
        )
    return DisplayNames(users=users, servers=servers)
