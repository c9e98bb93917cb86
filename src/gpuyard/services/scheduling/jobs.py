"""The job view: each workload in the registry of a queue-and-workers deployment (queued,
started, finished, failed, deferred with the time it comes back) and how many times it
was retried (re-queued after an eviction, a lost server or a failed start).

Read from the database alone, so it is the same with or without Redis: the registry
follows from the status (``domain/workload_state.REGISTRY_OF``), the time a deferred
workload comes back is its ``requeue_at`` (an evicted one's backoff end), and retries are
counted from its status events. Callers see only the workloads they may read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from gpuyard.auth.caller import Caller
from gpuyard.domain.errors import NotFound
from gpuyard.domain.workload_state import (
    REGISTRY_OF,
    RETRIED_FROM,
    JobRegistry,
    WorkloadStatus,
)
from gpuyard.services.context import ServiceContext
from gpuyard.services.identity.access import visible_workloads
from gpuyard.services.workloads.submission import load_workload
from gpuyard.store import workloads as workload_store

#: Deferred workloads listed with the queue, the soonest back first.
DEFERRED_SHOWN = 200
_RETRIED_FROM = sorted(s.value for s in RETRIED_FROM)
_DEFERRED = sorted(s.value for s, r in REGISTRY_OF.items() if r is JobRegistry.DEFERRED)


@dataclass(frozen=True)
class Job:
    workload_id: str
    name: str
    status: WorkloadStatus
    registry: JobRegistry
    retries: int
    #: When a deferred workload comes back to the queue (None: not deferred, or no time).
    deferred_until: datetime | None


@dataclass(frozen=True)
class JobRegistries:
    """How many of the caller's visible workloads each registry holds, and the deferred
    ones (up to :data:`DEFERRED_SHOWN`)."""

    counts: dict[JobRegistry, int]
    deferred: list[Job]


def _job(row: workload_store.JobRow, retries: int) -> Job:
    status = WorkloadStatus(row.status)
    registry = REGISTRY_OF[status]
    deferred_until = row.requeue_at if registry is JobRegistry.DEFERRED else None
    return Job(row.workload_id, row.name, status, registry, retries, deferred_until)


def job_registries(ctx: ServiceContext, caller: Caller) -> JobRegistries:
    """The registries' sizes and the deferred workloads the caller may read."""
    visible = visible_workloads(caller)
    with ctx.db.read() as session:
        by_status = workload_store.status_counts(session, visible)
        deferred = workload_store.job_rows(session, visible, _DEFERRED, DEFERRED_SHOWN)
        retries = workload_store.requeue_counts(
            session, [r.workload_id for r in deferred], _RETRIED_FROM
        )
    counts = dict.fromkeys(JobRegistry, 0)
    for status, count in by_status.items():
        counts[REGISTRY_OF[WorkloadStatus(status)]] += count
    jobs = [_job(r, retries.get(r.workload_id, 0)) for r in deferred]
    return JobRegistries(counts, jobs)


def retries_of(ctx: ServiceContext, workload_ids: Collection[str]) -> dict[str, int]:
    """{workload id: retries} (0 for those never retried)."""
    if not workload_ids:
        return {}
    with ctx.db.read() as session:
        found = workload_store.requeue_counts(session, workload_ids, _RETRIED_FROM)
    return {wid: found.get(wid, 0) for wid in workload_ids}


def get_job(ctx: ServiceContext, caller: Caller, workload_id: str) -> Job:
    """One workload's job view, if the caller may read it (NotFound otherwise)."""
    with ctx.db.read() as session:
        load_workload(session, caller, workload_id)  # NotFound unless visible
        row = workload_store.job_row(session, workload_id)
        if row is None:
            raise NotFound.for_object("workload", workload_id)
        retries = workload_store.requeue_counts(session, [workload_id], _RETRIED_FROM)
    return _job(row, retries.get(workload_id, 0))
