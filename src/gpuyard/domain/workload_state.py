"""The workload state machine (DESIGN.md section 3).

``pending`` (queued, with a reason) -> ``scheduled`` (resources reserved) -> ``starting``
-> ``running`` -> ``succeeded | failed | stopped``; ``preempted`` returns to ``pending``
after a backoff; ``lost`` (server went offline) is re-queued. Every status change goes
through :func:`check_transition`.
"""

from __future__ import annotations

from enum import StrEnum

from gpuyard.domain.errors import InvalidTransition


class WorkloadStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    PREEMPTED = "preempted"
    LOST = "lost"


S = WorkloadStatus

ALLOWED_TRANSITIONS: dict[WorkloadStatus, frozenset[WorkloadStatus]] = {
    # A pending workload is placed, stopped by its owner, or fails validation at start.
    S.PENDING: frozenset({S.SCHEDULED, S.STOPPED, S.FAILED}),
    # Reserved; waiting for victims to exit or the runtime to start it. A resize that no
    # longer fits sends it back to pending.
    S.SCHEDULED: frozenset(
        {S.STARTING, S.RUNNING, S.PENDING, S.PREEMPTED, S.STOPPED, S.FAILED, S.LOST}
    ),
    S.STARTING: frozenset({S.RUNNING, S.PENDING, S.PREEMPTED, S.STOPPED, S.FAILED, S.LOST}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.STOPPED, S.PREEMPTED, S.LOST, S.PENDING}),
    # Evicted: back in the queue after the backoff, unless the owner stops it.
    S.PREEMPTED: frozenset({S.PENDING, S.STOPPED}),
    # Its server went offline: re-queued per restart policy, or given up.
    S.LOST: frozenset({S.PENDING, S.STOPPED, S.FAILED, S.RUNNING}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.STOPPED: frozenset(),
}

#: Statuses in which a workload holds a reservation on a server.
HOLDS_RESOURCES: frozenset[WorkloadStatus] = frozenset({S.SCHEDULED, S.STARTING, S.RUNNING})

#: Statuses from which a workload never moves again.
TERMINAL: frozenset[WorkloadStatus] = frozenset({S.SUCCEEDED, S.FAILED, S.STOPPED})

#: Statuses in which a workload is still active (neither finished nor deleted).
ACTIVE: frozenset[WorkloadStatus] = frozenset(set(WorkloadStatus) - TERMINAL)


def can_transition(current: WorkloadStatus, target: WorkloadStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def check_transition(current: WorkloadStatus, target: WorkloadStatus) -> None:
    """Raise InvalidTransition unless ``current -> target`` is allowed."""
    if not can_transition(current, target):
        raise InvalidTransition(f"a {current.value} workload cannot become {target.value}")


class JobRegistry(StrEnum):
    """Where a workload stands in the job view of a queue-and-workers deployment (a main
    queue with started, finished, failed and deferred registries): each status is in one."""

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    DEFERRED = "deferred"


REGISTRY_OF: dict[WorkloadStatus, JobRegistry] = {
    S.PENDING: JobRegistry.QUEUED,
    S.SCHEDULED: JobRegistry.STARTED,
    S.STARTING: JobRegistry.STARTED,
    S.RUNNING: JobRegistry.STARTED,
    S.SUCCEEDED: JobRegistry.FINISHED,
    S.STOPPED: JobRegistry.FINISHED,
    S.FAILED: JobRegistry.FAILED,
    # Evicted, back after its backoff; or its server went offline, re-queued or given up.
    S.PREEMPTED: JobRegistry.DEFERRED,
    S.LOST: JobRegistry.DEFERRED,
}

#: A move from one of these back to pending is a retry: the workload was evicted, lost its
#: server, or its start failed (or no longer fit after a resize) and it queues again.
RETRIED_FROM: frozenset[WorkloadStatus] = frozenset(
    {S.PREEMPTED, S.LOST, S.SCHEDULED, S.STARTING, S.RUNNING}
)
