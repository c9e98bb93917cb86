"""The scheduler's queue state two ways, for tests that compare the snapshot cache with a
full reload of the same database."""

from __future__ import annotations

from typing import Any

from gpuyard.runtimes.registry import runs_containers
from gpuyard.services.context import ServiceContext
from gpuyard.services.scheduling.snapshot_loader import load_queue_state
from gpuyard.services.scheduling.snapshot_rows import QueueState


def cached(ctx: ServiceContext) -> QueueState:
    """The state as this process's snapshot cache refreshes it."""
    with ctx.db.read() as session:
        return ctx.snapshot_cache.refresh(session, container_kinds(ctx))


def fresh(ctx: ServiceContext) -> QueueState:
    """The state read in full, without the cache."""
    with ctx.db.read() as session:
        return load_queue_state(session, container_kinds(ctx))


def container_kinds(ctx: ServiceContext) -> list[str]:
    """The cluster kinds whose servers get containers, as the scheduling cycle asks."""
    return ctx.runtimes.kinds_where(runs_containers)


def comparable(state: QueueState) -> dict[str, Any]:
    """A QueueState with every collection in a canonical order."""
    snapshot = state.snapshot
    return {
        "servers": {s.id: s for s in snapshot.servers},
        "running": sorted(snapshot.running, key=lambda r: (r.workload_id, r.replica)),
        "quotas": dict(snapshot.quotas),
        "pending": sorted(state.pending, key=lambda p: (p.workload_id, p.first_missing_replica)),
        "seen": state.seen,
        "docker_servers": state.docker_servers,
    }
