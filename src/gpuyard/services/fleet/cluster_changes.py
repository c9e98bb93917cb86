"""Renaming and deleting a cluster (creating and reading it: clusters.py).

A cluster goes only once it is empty: no servers, and no active workload asking for it
(409 naming what remains). Finished workloads that asked for it forget it (their
``cluster_id`` becomes null), so old history never pins a cluster forever.

Both lock the cluster's row first (``lock_cluster_row``: FOR UPDATE on PostgreSQL;
SQLite runs one writer at a time): a server or workload being added to the cluster
commits before the delete looks (409 naming it), or waits and finds the cluster gone
(422). What the database still refuses (two renames to one name, racing past the name
check) is a 409 naming why, never a 500."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import Conflict, NotFound
from gpuyard.domain.fleet_records import Cluster
from gpuyard.domain.workload_state import ACTIVE, TERMINAL
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.audit import AuditActor, record_audit
from gpuyard.services.pools.specs import lock_pools_of, retire_pools
from gpuyard.store.fleet import (
    cluster_name_taken,
    cluster_record,
    delete_cluster_row,
    detach_cluster,
    lock_cluster_row,
    server_names_in_cluster,
    workloads_naming_cluster,
)

#: Server names a refusal quotes (the count says how many there are).
_NAMES_SHOWN = 5


def rename_cluster(ctx: ServiceContext, caller: Caller, cluster_id: str, name: str) -> Cluster:
    """Give the cluster a new name (Conflict when another cluster has it)."""
    now = ctx.now()
    with ctx.db.write() as session:
        row = lock_cluster_row(session, cluster_id, exclusive=True)
        if row is None:
            raise NotFound.for_object("cluster", cluster_id)
        old = row.name
        if name != old:
            taken = Conflict(f"a cluster named {name!r} already exists")
            if cluster_name_taken(session, name):
                raise taken
            row.name = name
            try:
                session.flush()
            except IntegrityError as exc:  # renamed (or created) concurrently: the unique name
                raise taken from exc
            details = {"name": name, "previous_name": old}
            record_audit(
                session, AuditActor.of(caller), "cluster.update", "cluster", row.id, now, details
            )
        return cluster_record(row)


def delete_cluster(ctx: ServiceContext, caller: Caller, cluster_id: str) -> None:
    """Delete an empty cluster; Conflict naming the servers or the active workloads that
    remain. Its pools go with it; their available warm containers stop first (they would
    otherwise count as its active workloads, and the pool loop would refill them)."""
    now = ctx.now()
    with ctx.db.write() as session:
        pools = lock_pools_of(session, cluster_id=cluster_id)  # before the cluster: see there
        row = lock_cluster_row(session, cluster_id, exclusive=True)
        if row is None:
            raise NotFound.for_object("cluster", cluster_id)
        names, servers = server_names_in_cluster(session, row.id, _NAMES_SHOWN)
        if servers:
            shown = ", ".join(repr(n) for n in names) + (", ..." if servers > len(names) else "")
            raise Conflict(
                f"cluster {row.name!r} still has {servers} server(s) ({shown}); delete them first"
            )
        # Its pools go with it: their waiting warm containers are no one's work.
        retire_pools(session, pools, f"cluster {row.name} deleted with its pool", now)
        active = workloads_naming_cluster(session, row.id, [s.value for s in ACTIVE])
        if active:
            raise Conflict(
                f"{active} active workload(s) asked for cluster {row.name!r}; "
                "stop or delete them first"
            )
        detached = detach_cluster(session, row.id, [s.value for s in TERMINAL])
        details = {"name": row.name, "kind": row.kind, "finished_workloads_detached": detached}
        record_audit(
            session, AuditActor.of(caller), "cluster.delete", "cluster", row.id, now, details
        )
        try:
            delete_cluster_row(session, row.id)
            session.flush()  # the database's refusal here, not at the commit
        except IntegrityError as exc:  # a writer that named the cluster without its lock
            raise Conflict(
                f"cluster {row.name!r} gained a server or workload while being deleted; try again"
            ) from exc
