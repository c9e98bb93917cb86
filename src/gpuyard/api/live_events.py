"""Live events as server-sent events: the ``data:`` of each kind (api/schemas/stream.py),
encoded once per event by the feed (``change_data``) whatever the number of streams it
goes to."""

from __future__ import annotations

from fastapi.sse import ServerSentEvent

from gpuyard.api.converters import server_public
from gpuyard.api.schemas.fleet import ServerPublic
from gpuyard.api.schemas.stream import (
    QueueChangePublic,
    ResyncPublic,
    StreamPlacementPublic,
    WorkloadChangePublic,
)
from gpuyard.domain.workload_records import Workload
from gpuyard.services.live.changes import Change, ServerChanged, WorkloadChanged
from gpuyard.services.live.feed import LiveFeed
from gpuyard.services.live.subscription import Resync, StreamEvent

#: What the ``data:`` line of an event holds, by its ``event:`` name (workload, server,
#: queue, resync): the OpenAPI document describes the stream's items with it.
LiveEventData = WorkloadChangePublic | ServerPublic | QueueChangePublic | ResyncPublic
_EVENT_NAMES = {"workloads": "workload", "servers": "server", "queue": "queue"}


def server_sent_event(feed: LiveFeed, item: StreamEvent | Resync) -> ServerSentEvent:
    """The SSE of one event or resync, with its ``id:`` for Last-Event-ID."""
    if isinstance(item, Resync):
        data = ResyncPublic(reason=item.reason).model_dump_json()
        return ServerSentEvent(event="resync", id=feed.event_id(item.seq), raw_data=data)
    return ServerSentEvent(
        event=_EVENT_NAMES[item.kind], id=feed.event_id(item.seq), raw_data=item.data
    )


def change_data(change: Change) -> str:
    """The ``data:`` of a change: encoded by the feed once per event (``LiveFeed.encode``),
    whatever the number of streams it goes to."""
    model: WorkloadChangePublic | ServerPublic | QueueChangePublic
    if isinstance(change, WorkloadChanged):
        model = workload_change_public(change.workload)
    elif isinstance(change, ServerChanged):
        model = server_public(change.server)
    else:
        model = QueueChangePublic()
    return model.model_dump_json()


def workload_change_public(workload: Workload) -> WorkloadChangePublic:
    """What a ``workload`` event says: the row of a workload list, without env, command
    and ports (which GET /workloads/{id} has, as its reader may see them)."""
    request = workload.request
    placements = [
        StreamPlacementPublic(
            replica=p.replica, server_id=p.server_id, gpu_indices=[i for i, _ in p.gpus]
        )
        for p in workload.placements
    ]
    first = placements[0] if placements else None
    return WorkloadChangePublic(
        id=workload.id,
        name=workload.name,
        owner_id=workload.owner_id,
        team_id=workload.team_id,
        cluster_id=workload.cluster_id,
        status=workload.status,
        reason=workload.reason,
        reason_code=workload.reason_code,
        priority=workload.priority,
        preemptible=workload.preemptible,
        replicas=workload.replicas,
        cpu=request.cpu,
        ram_gb=request.ram_gb,
        storage_gb=request.storage_gb,
        gpu=request.gpu,
        gpu_model=workload.gpu_model,
        server_id=first.server_id if first else None,
        gpu_indices=first.gpu_indices if first else [],
        placements=placements,
        preemption_count=workload.preemption_count,
        updated_at=workload.updated_at,
        started_at=workload.started_at,
        finished_at=workload.finished_at,
    )
