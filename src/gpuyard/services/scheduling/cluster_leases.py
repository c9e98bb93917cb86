"""Per-cluster scheduler leases: several workers split the clusters between them.

Each process that runs the scheduling loop renews a membership lease of its own
(``scheduler-member:<instance id>``) and, in the same short write, counts the live
members. Its share is ``ceil(clusters / members)``: it renews the cluster leases
(``scheduler:<cluster id>``) it holds up to that share, lets the ones beyond it lapse at
once (a new worker joined: it takes them on its next cycle), and takes free ones until
its share is full. One process takes every cluster; two split them; when one dies, its
membership and its clusters lapse after the lease time and the other takes them all.

A cycle then plans over the servers of its clusters, the workloads pinned to them and the
workloads that name no cluster (every worker may place those; the workload's version
compare-and-set lets one placement win), and applies each decision under the fences of
the clusters it touches. What belongs to no cluster (the pending reasons of workloads
that name none, workloads whose rows cannot be read) is written by the holder of the
first cluster (by id), so two workers never flap a reason between their partial views.

With leases off (the embedded SQLite) none of this runs: one process plans everything,
as before. Correctness never depends on these leases (docs/concurrency.md, rule 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gpuyard.services.context import ServiceContext
from gpuyard.services.loops.leases import LeaseFence, lease_ttl, loop_leases_enabled
from gpuyard.store import fleet
from gpuyard.store.leases import (
    acquire_lease,
    forget_lapsed_leases,
    holders_of,
    release_lease,
    release_leases_named,
)

CLUSTER_LEASE_PREFIX = "scheduler:"
MEMBER_LEASE_PREFIX = "scheduler-member:"


def cluster_lease(cluster_id: str) -> str:
    return CLUSTER_LEASE_PREFIX + cluster_id


@dataclass(frozen=True)
class ClusterLeases:
    """The clusters this process schedules in this cycle, each with its fence."""

    fences: Mapping[str, LeaseFence]
    #: Every cluster that existed when the leases were taken is held here: plan the whole
    #: fleet, as one process always did.
    every_cluster: bool
    #: This process writes what belongs to no cluster (see the module's docstring).
    home: bool

    def fences_of(self, cluster_ids: Iterable[str]) -> tuple[LeaseFence, ...]:
        return tuple(self.fences[c] for c in sorted(set(cluster_ids)) if c in self.fences)


def take_cluster_leases(ctx: ServiceContext) -> ClusterLeases | None:
    """Renew this process's membership and take its share of the cluster leases, in one
    short write; None when leases are off (plan everything, fence nothing)."""
    if not loop_leases_enabled(ctx):
        return None
    me, now = ctx.instance_id, ctx.now()
    ttl = lease_ttl(ctx.settings.scheduler_interval_s)
    fences: dict[str, LeaseFence] = {}
    with ctx.db.write() as session:
        acquire_lease(session, MEMBER_LEASE_PREFIX + me, me, now, ttl)
        # Members are named after processes, which never come back: forget dead ones.
        forget_lapsed_leases(session, MEMBER_LEASE_PREFIX, now - ttl)
        members = max(1, len(set(holders_of(session, MEMBER_LEASE_PREFIX, now).values())))
        clusters = fleet.cluster_ids(session)
        share = math.ceil(len(clusters) / members)
        holders = holders_of(session, CLUSTER_LEASE_PREFIX, now)
        mine = [c for c in clusters if holders.get(cluster_lease(c)) == me]
        for cluster_id in mine[share:]:  # beyond this process's share: hand over now
            release_lease(session, cluster_lease(cluster_id), me, now)
        wanted = mine[:share] + [c for c in clusters if cluster_lease(c) not in holders]
        for cluster_id in wanted:
            if len(fences) >= share:
                break
            token = acquire_lease(session, cluster_lease(cluster_id), me, now, ttl)
            if token is not None:
                fences[cluster_id] = LeaseFence(cluster_lease(cluster_id), me, token)
    return ClusterLeases(
        fences=fences,
        every_cluster=len(fences) == len(clusters),
        home=not clusters or clusters[0] in fences,
    )


def release_cluster_leases(ctx: ServiceContext) -> None:
    """On a clean stop: hand this process's clusters and membership over at once."""
    if not loop_leases_enabled(ctx):
        return
    with ctx.db.write() as session:
        for prefix in (CLUSTER_LEASE_PREFIX, MEMBER_LEASE_PREFIX):
            release_leases_named(session, prefix, ctx.instance_id, ctx.now())
