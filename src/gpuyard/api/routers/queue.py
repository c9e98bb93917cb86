"""The queue: pending workloads in scheduling order, each with its reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from gpuyard.api.authorization import requires
from gpuyard.api.converters import workload_public
from gpuyard.api.deps import ContextDep
from gpuyard.api.schemas.workloads import QueueEntryPublic, QueuePublic
from gpuyard.auth.caller import Caller
from gpuyard.auth.permissions import Permission
from gpuyard.services.names import names_for_workloads
from gpuyard.services.scheduling.queue import queue_view

router = APIRouter(prefix="/queue", tags=["queue"])


@router.get("", response_model=QueuePublic)
def get_queue(
    ctx: ContextDep, caller: Annotated[Caller, requires(Permission.WORKLOAD_READ)]
) -> QueuePublic:
    entries = queue_view(ctx, caller)
    names = names_for_workloads(ctx, [e.workload for e in entries])
    data = [
        QueueEntryPublic(
            position=e.position,
            workload=workload_public(e.workload, names, caller),
            reason=e.pending.reason,
            code=e.pending.code.value,
            reserved_server_id=e.pending.reserved_server_id,
        )
        for e in entries
    ]
    return QueuePublic(data=data, count=len(data))
