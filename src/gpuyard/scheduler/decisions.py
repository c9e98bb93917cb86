"""What one scheduling cycle decides: admissions (with victims) and pending reasons."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gpuyard.scheduler.snapshot import GpuAllocation


class PendingCode(StrEnum):
    """Why a workload waits, and whether preemption could ever help."""

    UNSCHEDULABLE = "unschedulable"  # no room now; freeing resources (or preemption) helps
    UNRESOLVABLE = "unresolvable"  # no server could ever fit it (model, labels, capacity)
    QUOTA = "quota"  # the team's quota is used up
    RESERVED = "reserved"  # a starving workload holds the only fitting servers
    BACKOFF = "backoff"  # preempted recently; waits before it is considered again


@dataclass(frozen=True, slots=True)
class ReplicaAssignment:
    replica: int
    server_id: str
    gpu_allocation: GpuAllocation


@dataclass(frozen=True, slots=True)
class Victim:
    workload_id: str
    replica: int
    server_id: str


@dataclass(frozen=True, slots=True)
class Admission:
    """Place these replicas; evict ``victims`` in the same transaction."""

    workload_id: str
    assignments: tuple[ReplicaAssignment, ...]
    victims: tuple[Victim, ...] = ()
    #: Set when victims were reclaimed for a team under its guarantee
    #: (scheduler/fairshare.py): the lender (the preemptor's team) and the borrowers.
    lender: str | None = None
    borrowers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pending:
    """Keep waiting, with a human reason; ``reserved_server_id`` is set for a starving one."""

    workload_id: str
    code: PendingCode
    reason: str
    reserved_server_id: str | None = None


@dataclass(frozen=True, slots=True)
class CycleResult:
    admitted: tuple[Admission, ...]
    pending: tuple[Pending, ...]
    #: Workload ids in the order the queue considered them (the GET /queue order).
    order: tuple[str, ...] = ()
