"""The immutable input of one scheduling cycle.

Built by the services layer from the database; the engine only reads it. Times are plain
floats (seconds since the epoch) so the engine needs no clock of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuyard.domain.resources import Resources
from gpuyard.domain.server_state import ServerStatus
from gpuyard.scheduler.fairshare import QueueNode

#: The quota holder of a workload in no team: its owner, under this prefix, so one
#: mapping of quotas (``ClusterSnapshot.quotas``) holds teams and users in no team alike
#: (issue 21: a default quota for users in no team). Team ids never contain a colon.
PERSONAL_QUOTA_PREFIX = "user:"


def quota_holder(team_id: str | None, owner_id: str) -> str:
    """Whose quota a workload counts against: its team's, else its owner's own."""
    return team_id if team_id is not None else PERSONAL_QUOTA_PREFIX + owner_id


#: GPU allocation of one replica: ((gpu_index, milli), ...), sorted by index.
GpuAllocation = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One GPU of a server and how much of it (milli, 0..1000) is already allocated, and
    of its memory (``memory_mib``, 0: unknown) how much shares have reserved."""

    index: int
    model: str
    memory_mib: int = 0
    allocated_milli: int = 0
    allocated_memory_mib: int = 0

    @property
    def free_memory_mib(self) -> int:
        return self.memory_mib - self.allocated_memory_mib


@dataclass(frozen=True, slots=True)
class ServerView:
    """A server as the scheduler sees it: capacity, what is allocated, its GPUs."""

    id: str
    name: str
    cluster_id: str
    status: ServerStatus
    capacity: Resources
    allocated: Resources
    gpus: tuple[GpuDevice, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Its runtime hands out whole devices only (Kubernetes device plugins): no GPU shares.
    whole_gpus_only: bool = False

    @property
    def free(self) -> Resources:
        return self.capacity - self.allocated


@dataclass(frozen=True, slots=True)
class RunningReplica:
    """One placed replica that holds resources (scheduled, starting or running)."""

    workload_id: str
    replica: int
    server_id: str
    priority: int
    preemptible: bool
    resources: Resources
    gpu_allocation: GpuAllocation
    started_at: float | None  # None while still scheduled/starting
    team_id: str | None = None
    name: str = ""
    #: The model set it asked for (``A|B``), so the learned FGD mix keeps it; None = any.
    gpu_model: str | None = None


@dataclass(frozen=True, slots=True)
class PendingWorkload:
    """A workload (or the missing replicas of one) waiting to be placed."""

    workload_id: str
    priority: int
    submitted_at: float
    resources: Resources  # per replica
    name: str = ""
    pending_since: float | None = None  # defaults to submitted_at
    gpu_model: str | None = None
    cluster_id: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    team_id: str | None = None
    replicas_missing: int = 1
    first_missing_replica: int = 0
    gang: bool = False
    preemptible: bool = True
    #: Set after a preemption: the engine keeps it pending (code BACKOFF) until this time.
    backoff_until: float | None = None

    @property
    def waiting_since(self) -> float:
        return self.submitted_at if self.pending_since is None else self.pending_since


@dataclass(frozen=True, slots=True)
class TeamQuota:
    """A team's cap on concurrently allocated resources and what it uses now.

    A dimension of ``limit`` that is None is unlimited.
    """

    team_id: str
    used: Resources
    cpu_milli: int | None = None
    ram_mib: int | None = None
    gpu_milli: int | None = None


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Everything one cycle decides over."""

    servers: tuple[ServerView, ...]
    running: tuple[RunningReplica, ...] = ()
    quotas: Mapping[str, TeamQuota] = field(default_factory=dict)
    #: The quota tree (scheduler/fairshare.py): every team's parent, guarantee, limit and
    #: weight; ``used``/``pending`` of these nodes are ignored (the cycle counts them).
    #: Empty: no tree, the queue orders teams by their quota's dominant share only.
    teams: Mapping[str, QueueNode] = field(default_factory=dict)
    #: The half-life the nodes' ``history`` decays with (``GPUYARD_FAIRSHARE_HALF_LIFE_S``,
    #: scheduler/usage_decay.py); None: history is ignored (plain DRF).
    usage_half_life_s: float | None = None


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Tunables of the engine, chosen once when the profile is built."""

    profile: str = "pack"  # registry name: "pack" (default), "binpack", "spread", "fgd"
    starvation_seconds: float = 600.0
    min_runtime_seconds: float = 0.0
    preemption: bool = True
    #: Stop looking for more feasible servers once this many were found and score only those
    #: (kube-scheduler's percentageOfNodesToScore). Candidates are visited best-first for the
    #: profile (tightest servers first for ``pack``), so a packing criterion stays exact;
    #: ``fgd`` picks the best by fragmentation among the tightest (on the Alibaba trace that
    #: leaves fewer GPUs unallocated than scoring every server; bench/analysis.md, S5).
    #: 0 = score every feasible server.
    candidates_to_score: int = 64
    #: At most this many servers get an exact victim search per preemption attempt (they are
    #: visited by their lowest evictable priority, so the first criterion stays exact).
    #: 0 = search every server.
    preemption_candidates: int = 32
    #: At most this many starving workloads hold a server reservation per cycle (the oldest
    #: first in queue order), so a long starving backlog cannot idle the whole fleet.
    max_reservations: int = 16
