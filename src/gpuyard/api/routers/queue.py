"""The queue: pending workloads in scheduling order, each with its reason, and the job
view (every workload's registry: queued, started, finished, failed, deferred; retries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from gpuyard.api.authorization import requires
from gpuyard.api.converters import workload_public
from gpuyard.api.deps import ContextDep
from gpuyard.api.fairshare_converters import fairshare_team_public
from gpuyard.api.schemas.fairshare import FairShareTeamPublic
from gpuyard.api.schemas.workloads import (
    JobPublic,
    JobRegistriesPublic,
    QueueEntryPublic,
    QueuePublic,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.names import names_for_workloads
from gpuyard.services.scheduling.fairshare_view import FairShareEntry, fairshare_view
from gpuyard.services.scheduling.jobs import Job, get_job, job_registries, retries_of
from gpuyard.services.scheduling.queue import queue_view

router = APIRouter(prefix="/queue", tags=["queue"])
Reader = Annotated[Caller, requires(Permission.WORKLOAD_READ)]


@router.get("", response_model=QueuePublic)
def get_queue(ctx: ContextDep, caller: Reader) -> QueuePublic:
    entries = queue_view(ctx, caller)
    names = names_for_workloads(ctx, [e.workload for e in entries])
    retries = retries_of(ctx, [e.workload.id for e in entries])
    registries = job_registries(ctx, caller)
    data = [
        QueueEntryPublic(
            position=e.position,
            workload=workload_public(e.workload, names, caller),
            reason=e.pending.reason,
            code=e.pending.code.value,
            reserved_server_id=e.pending.reserved_server_id,
            retries=retries[e.workload.id],
            estimated_start=e.estimated_start,
        )
        for e in entries
    ]
    counts = {registry.value: n for registry, n in registries.counts.items()}
    queued = {e.workload.team_id for e in entries if e.workload.team_id is not None}
    return QueuePublic(
        data=data,
        count=len(data),
        registries=JobRegistriesPublic(**counts),
        deferred=[_job_public(job) for job in registries.deferred],
        teams=_queued_teams(fairshare_view(ctx, caller)[1], queued) if queued else [],
    )


def _queued_teams(shares: list[FairShareEntry], queued: set[str]) -> list[FairShareTeamPublic]:
    """The fair-share figures of the teams with work in the queue and their departments
    (those the caller may see), in the tree's order."""
    parents = {e.share.team_id: e.share.parent_id for e in shares}
    wanted = queued | {p for t in queued if (p := parents.get(t)) is not None}
    return [fairshare_team_public(e) for e in shares if e.share.team_id in wanted]


@router.get("/{workload_id}", response_model=JobPublic)
def get_queue_job(ctx: ContextDep, caller: Reader, workload_id: str) -> JobPublic:
    """One workload's place in the job view: its registry, retries, when it comes back."""
    return _job_public(get_job(ctx, caller, workload_id))


def _job_public(job: Job) -> JobPublic:
    return JobPublic(
        workload_id=job.workload_id,
        name=job.name,
        status=job.status.value,
        registry=job.registry.value,
        retries=job.retries,
        deferred_until=job.deferred_until,
    )
