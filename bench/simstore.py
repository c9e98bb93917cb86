"""An in-memory stand-in for the database, for replays that drive the pure engine directly.

It applies a cycle's decisions the way ``services/scheduling/cycle.py`` commits them (evict the
victims, then reserve the preemptor's replicas on exactly the chosen devices) and hands out
the next cycle's :class:`ClusterSnapshot`. No I/O, so a replay measures the engine alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from gpuyard.domain.resources import Resources
from gpuyard.scheduler.decisions import Admission
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    GpuAllocation,
    PendingWorkload,
    RunningReplica,
    ServerView,
)

ReplicaKey = tuple[str, int]


class SimStore:
    """Servers with their counters and the running replicas, changed only by decisions."""

    def __init__(
        self, servers: Sequence[ServerView], running: Iterable[RunningReplica] = ()
    ) -> None:
        self.servers: dict[str, ServerView] = {s.id: s for s in servers}
        self.running: dict[ReplicaKey, RunningReplica] = {}
        for replica in running:
            self._add(replica)

    def snapshot(self) -> ClusterSnapshot:
        return ClusterSnapshot(
            servers=tuple(self.servers.values()), running=tuple(self.running.values())
        )

    def apply(self, admission: Admission, workload: PendingWorkload, now: float) -> None:
        """Evict ``admission.victims`` and place its replicas (one commit in the product)."""
        for victim in admission.victims:
            self.remove((victim.workload_id, victim.replica))
        for assignment in admission.assignments:
            self._add(
                RunningReplica(
                    workload_id=workload.workload_id,
                    replica=assignment.replica,
                    server_id=assignment.server_id,
                    priority=workload.priority,
                    preemptible=workload.preemptible,
                    resources=workload.resources,
                    gpu_allocation=assignment.gpu_allocation,
                    started_at=now,
                    team_id=workload.team_id,
                    name=workload.name,
                    gpu_model=workload.gpu_model if workload.resources.gpu_milli else None,
                )
            )

    def remove(self, key: ReplicaKey) -> RunningReplica:
        """Release a running replica (finished or evicted)."""
        replica = self.running.pop(key)
        self._charge(replica.server_id, replica.resources, replica.gpu_allocation, -1)
        return replica

    def allocated(self) -> Resources:
        total = Resources()
        for server in self.servers.values():
            total = total + server.allocated
        return total

    def _add(self, replica: RunningReplica) -> None:
        key = (replica.workload_id, replica.replica)
        if key in self.running:
            raise ValueError(f"replica {key} is placed twice")
        self.running[key] = replica
        self._charge(replica.server_id, replica.resources, replica.gpu_allocation, 1)

    def _charge(self, server_id: str, res: Resources, alloc: GpuAllocation, sign: int) -> None:
        server = self.servers[server_id]
        delta = dict(alloc)
        memory = sign * res.gpu_memory_mib  # a share's GPU memory, on its device
        gpus = tuple(
            replace(
                g,
                allocated_milli=g.allocated_milli + sign * delta[g.index],
                allocated_memory_mib=g.allocated_memory_mib + memory,
            )
            if g.index in delta
            else g
            for g in server.gpus
        )
        allocated = server.allocated + res if sign > 0 else server.allocated - res
        devices_ok = all(
            0 <= g.allocated_milli <= 1000 and 0 <= g.allocated_memory_mib <= g.memory_mib
            for g in gpus
        )
        if not (devices_ok and allocated.is_non_negative() and allocated.fits_in(server.capacity)):
            raise ValueError(f"server {server_id} would be oversubscribed (a bench bug)")
        self.servers[server_id] = replace(server, allocated=allocated, gpus=gpus)
