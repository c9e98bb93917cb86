"""A tiny model of the services layer: applies cycle decisions and checks invariants.

Used by the property test and multi-cycle scenarios. It is deliberately naive (no DB, no
runtime): the point is that whatever the engine decides, applying it literally never breaks
an invariant.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from factories.scheduler import make_snapshot

from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.decisions import CycleResult
from gpuyard.scheduler.gpu_match import device_matches, model_key
from gpuyard.scheduler.snapshot import (
    ClusterSnapshot,
    PendingWorkload,
    RunningReplica,
    ServerView,
    TeamQuota,
)

BACKOFF_SECONDS = 10.0


@dataclass
class Spec:
    """A workload as the user asked for it."""

    id: str
    priority: int
    resources: Resources
    replicas: int = 1
    gang: bool = False
    preemptible: bool = True
    model: str | None = None
    team: str | None = None
    submitted_at: float = 0.0


class World:
    def __init__(self, quotas: dict[str, TeamQuota] | None = None) -> None:
        self.servers: dict[str, ServerView] = {}  # capacity only; usage comes from running
        self.running: dict[tuple[str, int], RunningReplica] = {}
        self.specs: dict[str, Spec] = {}
        self.backoff: dict[str, float] = {}
        self.quota_limits = quotas or {}
        self.now = 0.0

    # -- views -------------------------------------------------------------------------
    def snapshot(self) -> ClusterSnapshot:
        quotas = []
        for team, quota in self.quota_limits.items():
            used = Resources()
            for r in self.running.values():
                if r.team_id == team:
                    used = used + r.resources
            quotas.append(replace(quota, used=used))
        return make_snapshot(self.servers.values(), self.running.values(), quotas)

    def pending(self) -> list[PendingWorkload]:
        out: list[PendingWorkload] = []
        for spec in self.specs.values():
            missing = [r for r in range(spec.replicas) if (spec.id, r) not in self.running]
            runs: list[list[int]] = []
            for r in missing:
                if runs and runs[-1][-1] == r - 1:
                    runs[-1].append(r)
                else:
                    runs.append([r])
            for run in runs:
                out.append(
                    PendingWorkload(
                        workload_id=spec.id,
                        priority=spec.priority,
                        submitted_at=spec.submitted_at,
                        resources=spec.resources,
                        gpu_model=spec.model,
                        team_id=spec.team,
                        replicas_missing=len(run),
                        first_missing_replica=run[0],
                        gang=spec.gang,
                        preemptible=spec.preemptible,
                        backoff_until=self.backoff.get(spec.id),
                    )
                )
        return out

    # -- applying decisions ------------------------------------------------------------
    def apply(
        self, result: CycleResult, pending: list[PendingWorkload], min_runtime: float
    ) -> None:
        """Apply every admission as the services layer would, checking each decision."""
        usage_before = self._team_usage()
        for admission in result.admitted:
            spec = self.specs[admission.workload_id]
            for victim in admission.victims:
                replica = self.running.pop((victim.workload_id, victim.replica))
                assert replica.server_id == victim.server_id
                assert replica.priority < spec.priority, "victim not strictly lower priority"
                assert replica.preemptible, "non-preemptible victim"
                assert not (
                    replica.started_at is not None and self.now - replica.started_at < min_runtime
                ), "victim protected by min_runtime"
                self.backoff[victim.workload_id] = self.now + BACKOFF_SECONDS
            victim_servers = {v.server_id for v in admission.victims}
            # Only a gang spreads its preemption over servers (and only all at once).
            assert spec.gang or len(victim_servers) <= 1, "victims on two servers"
            # Work is evicted only where the preemptor lands.
            assert victim_servers <= {a.server_id for a in admission.assignments}
            for a in admission.assignments:
                key = (spec.id, a.replica)
                assert 0 <= a.replica < spec.replicas
                assert key not in self.running, "replica admitted twice"
                server = self.servers[a.server_id]
                assert server.status is ServerStatus.ONLINE
                wanted = model_key(spec.model)
                models = {g.index: g.model for g in server.gpus}
                assert all(device_matches(wanted, models[i]) for i, _ in a.gpu_allocation)
                self.running[key] = RunningReplica(
                    workload_id=spec.id,
                    replica=a.replica,
                    server_id=a.server_id,
                    priority=spec.priority,
                    preemptible=spec.preemptible,
                    resources=spec.resources,
                    gpu_allocation=a.gpu_allocation,
                    started_at=self.now,
                    team_id=spec.team,
                )
            if spec.gang:
                # All replicas of each pending gang entry, or none of them.
                got = {a.replica for a in admission.assignments}
                for entry in pending:
                    if entry.workload_id == spec.id:
                        first = entry.first_missing_replica
                        entry_replicas = set(range(first, first + entry.replicas_missing))
                        assert entry_replicas <= got or not entry_replicas & got, (
                            "gang admitted partly"
                        )
        usage_after = self._team_usage()
        for team, quota in self.quota_limits.items():
            # A resize may have pushed a team over; a cycle never pushes it further.
            if quota.gpu_milli is not None:
                before, after = usage_before.get(team, 0), usage_after.get(team, 0)
                assert after <= max(quota.gpu_milli, before), f"team {team} over GPU quota"

    def _team_usage(self) -> dict[str, int]:
        used: dict[str, int] = {}
        for r in self.running.values():
            if r.team_id is not None:
                used[r.team_id] = used.get(r.team_id, 0) + r.resources.gpu_milli
        return used

    def check_invariants(self) -> None:
        """Never over capacity, never over one GPU per device, whole GPUs distinct."""
        snapshot = self.snapshot()
        for server in snapshot.servers:
            assert server.allocated.fits_in(server.capacity), f"{server.id} over capacity"
            for gpu in server.gpus:
                assert 0 <= gpu.allocated_milli <= 1000, f"{server.id} gpu {gpu.index} over"
                assert 0 <= gpu.allocated_memory_mib <= gpu.memory_mib, (
                    f"{server.id} gpu {gpu.index} memory over"
                )
            holders: dict[int, list[int]] = {}
            for r in snapshot.running:
                if r.server_id != server.id:
                    continue
                indices = [i for i, _ in r.gpu_allocation]
                assert len(indices) == len(set(indices))
                assert sum(m for _, m in r.gpu_allocation) == r.resources.gpu_milli
                if r.resources.whole_gpus:
                    assert all(m == 1000 for _, m in r.gpu_allocation)
                    assert len(indices) == r.resources.whole_gpus
                for i, m in r.gpu_allocation:
                    holders.setdefault(i, []).append(m)
            for milli in holders.values():
                if 1000 in milli:
                    assert milli == [1000], "a whole GPU shared with another replica"
