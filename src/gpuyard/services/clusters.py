"""Clusters: a named group of servers with one runtime kind."""

from __future__ import annotations

from sqlalchemy import func, select

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, Forbidden, NotFound
from gpuyard.domain.server_state import ClusterKind
from gpuyard.services.context import ServiceContext
from gpuyard.store.fleet_tables import ClusterRow


def require_fleet_manager(caller: Caller) -> None:
    if not caller.manages_fleet:
        raise Forbidden("only admins and operators manage clusters and servers")


def create_cluster(ctx: ServiceContext, caller: Caller, name: str, kind: ClusterKind) -> ClusterRow:
    require_fleet_manager(caller)
    with ctx.db.write() as session:
        if session.scalar(select(ClusterRow.id).where(ClusterRow.name == name)):
            raise Conflict(f"a cluster named {name!r} already exists")
        row = ClusterRow(name=name, kind=kind.value, created_at=ctx.now())
        session.add(row)
    return row


def list_clusters(ctx: ServiceContext, limit: int, offset: int) -> tuple[list[ClusterRow], int]:
    with ctx.db.read() as session:
        count = session.scalar(select(func.count()).select_from(ClusterRow)) or 0
        rows = session.scalars(
            select(ClusterRow).order_by(ClusterRow.created_at.desc()).limit(limit).offset(offset)
        ).all()
        return list(rows), count


def get_cluster(ctx: ServiceContext, cluster_id: str) -> ClusterRow:
    with ctx.db.read() as session:
        row = session.get(ClusterRow, cluster_id)
        if row is None:
            raise NotFound.for_object("cluster", cluster_id)
        return row
