"""Workloads: create, read, list, change, stop, delete, events and logs."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gpuyard.api.authorization import requires
from gpuyard.api.converters import event_public, workload_public
from gpuyard.api.deps import ContextDep, LimitQuery, OffsetQuery
from gpuyard.api.schemas.workloads import (
    PlannedReplicaPublic,
    PlannedVictimPublic,
    WorkloadCreate,
    WorkloadEventsPublic,
    WorkloadPlanPublic,
    WorkloadPublic,
    WorkloadsPublic,
    WorkloadUpdate,
)
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.domain.limits import MAX_NAME_LENGTH
from gpuyard.domain.listing import WorkloadSort
from gpuyard.domain.workload_records import Workload
from gpuyard.domain.workload_state import WorkloadStatus
from gpuyard.services.context import ServiceContext
from gpuyard.services.names import DisplayNames, names_for_workloads
from gpuyard.services.scheduling.plan import plan_workload
from gpuyard.services.workloads import changes as workload_changes
from gpuyard.services.workloads import submission as workloads

router = APIRouter(prefix="/workloads", tags=["workloads"])
IdQuery = Annotated[str | None, Query(max_length=64)]
Submitter = Annotated[Caller, requires(Permission.WORKLOAD_CREATE)]
Reader = Annotated[Caller, requires(Permission.WORKLOAD_READ)]
Changer = Annotated[Caller, requires(Permission.WORKLOAD_CHANGE)]


def _public(ctx: ServiceContext, workload: Workload, caller: Caller) -> WorkloadPublic:
    return workload_public(workload, names_for_workloads(ctx, [workload]), caller)


@router.post("", response_model=WorkloadPublic, status_code=status.HTTP_201_CREATED)
async def create_workload(
    ctx: ContextDep, caller: Submitter, body: WorkloadCreate
) -> WorkloadPublic:
    # Async: the busiest write path waits for its group commit without a worker thread.
    # The body is the service's WorkloadSpec as it is: no copy into another shape.
    workload = await workloads.create_workload_async(ctx, caller, body)
    if workload.from_pool:  # running already: its server and host ports are worth a read
        return await asyncio.to_thread(_public, ctx, workload, caller)
    # Just queued: the caller owns it and it is placed nowhere yet, so the names are known
    # without another database read (this is the busiest write path).
    names = DisplayNames(users={caller.user_id: caller.email}, servers={})
    return workload_public(workload, names, caller)


@router.post("/plan", response_model=WorkloadPlanPublic)
def plan_submission(
    ctx: ContextDep,
    caller: Annotated[Caller, requires(Permission.WORKLOAD_PLAN)],
    body: WorkloadCreate,
) -> WorkloadPlanPublic:
    """Where the request (a submission's body) would go now, whom it would preempt (the
    workloads you may read; the others counted), or why it would wait, with its estimated
    start. Checked as a submission is (the same 422s); nothing is written."""
    plan = plan_workload(ctx, caller, body)
    return WorkloadPlanPublic(
        starts_now=plan.starts_now,
        placements=[PlannedReplicaPublic(**vars(p)) for p in plan.placements],
        preempts=[PlannedVictimPublic(**vars(v)) for v in plan.preempts],
        preempts_hidden=plan.preempts_hidden,
        code=plan.code,
        reason=plan.reason,
        estimated_start=plan.estimated_start,
    )


@router.get("", response_model=WorkloadsPublic)
def list_workloads(
    ctx: ContextDep,
    caller: Reader,
    status_: Annotated[list[WorkloadStatus] | None, Query(alias="status")] = None,
    cluster_id: IdQuery = None,
    server_id: IdQuery = None,
    owner_id: IdQuery = None,
    team_id: IdQuery = None,
    name: Annotated[str | None, Query(max_length=MAX_NAME_LENGTH, description="exact")] = None,
    name_prefix: Annotated[
        str | None, Query(max_length=MAX_NAME_LENGTH, description="names starting with this")
    ] = None,
    id_prefix: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            pattern="^[0-9a-f]+$",
            description="ids starting with this (the CLI's short ids)",
        ),
    ] = None,
    sort: Annotated[
        WorkloadSort, Query(description="newest (default), oldest, name, priority, status")
    ] = WorkloadSort.NEWEST,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> WorkloadsPublic:
    """Visible workloads (every one for admins and operators), filtered, in ``sort``
    order, a page at a time."""
    where = workloads.WorkloadFilter(
        status_, cluster_id, server_id, owner_id, team_id, name, name_prefix, sort, id_prefix
    )
    found, count = workloads.list_workloads(ctx, caller, where, limit, offset)
    names = names_for_workloads(ctx, found)
    return WorkloadsPublic(data=[workload_public(w, names, caller) for w in found], count=count)


@router.get("/{workload_id}", response_model=WorkloadPublic)
def get_workload(ctx: ContextDep, caller: Reader, workload_id: str) -> WorkloadPublic:
    return _public(ctx, workloads.get_workload(ctx, caller, workload_id), caller)


@router.patch("/{workload_id}", response_model=WorkloadPublic)
def update_workload(
    ctx: ContextDep, caller: Changer, workload_id: str, body: WorkloadUpdate
) -> WorkloadPublic:
    changes = workload_changes.WorkloadChanges(**body.model_dump())
    workload_changes.update_workload(ctx, caller, workload_id, changes)
    return _public(ctx, workloads.get_workload(ctx, caller, workload_id), caller)


@router.post("/{workload_id}/stop", response_model=WorkloadPublic)
def stop_workload(ctx: ContextDep, caller: Changer, workload_id: str) -> WorkloadPublic:
    workload_changes.stop_workload(ctx, caller, workload_id)
    return _public(ctx, workloads.get_workload(ctx, caller, workload_id), caller)


@router.delete("/{workload_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workload(ctx: ContextDep, caller: Changer, workload_id: str) -> Response:
    workload_changes.delete_workload(ctx, caller, workload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{workload_id}/events", response_model=WorkloadEventsPublic)
def list_events(
    ctx: ContextDep,
    caller: Reader,
    workload_id: str,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> WorkloadEventsPublic:
    events, count = workloads.list_workload_events(ctx, caller, workload_id, limit, offset)
    return WorkloadEventsPublic(data=[event_public(e) for e in events], count=count)
